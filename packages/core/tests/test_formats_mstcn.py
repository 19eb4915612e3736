"""MS-TCN label files: mapping, ground truth, predictions, bundles; real Breakfast samples."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tal.core.errors import DataFormatError
from tal.core.formats import (
    PREDICTION_HEADER,
    atomic,
    read_bundle,
    read_frame_names,
    read_ground_truth,
    read_mapping,
    read_prediction,
    video_id_of,
    write_bundle,
    write_ground_truth,
    write_mapping,
    write_prediction,
)

BREAKFAST = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "segmentation" / "breakfast"
needs_breakfast = pytest.mark.skipif(
    not (BREAKFAST / "mapping.txt").is_file(), reason=f"Breakfast sample files not found at {BREAKFAST}"
)
CLASSES = ["SIL", "take_bowl", "pour_cereals", "pour_milk"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _err(fn: Any, *args: Any) -> str:
    with pytest.raises(DataFormatError) as info:
        fn(*args)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Real Breakfast files
# ---------------------------------------------------------------------------------------------
@needs_breakfast
def test_breakfast_mapping() -> None:
    mapping = read_mapping(BREAKFAST / "mapping.txt")
    assert len(mapping) == 48
    assert mapping["SIL"] == 0 and mapping["stir_tea"] == 47 and mapping["pour_cereals"] == 1
    assert list(mapping.values()) == list(range(48))


@needs_breakfast
def test_breakfast_ground_truth_loads_with_wc_l_frame_counts() -> None:
    mapping = read_mapping(BREAKFAST / "mapping.txt")
    files = sorted((BREAKFAST / "groundTruth").glob("*.txt"))
    assert len(files) == 20
    for f in files:
        labels = read_ground_truth(f, mapping)
        assert labels.dtype == np.int64
        assert labels.shape == (f.read_bytes().count(b"\n"),), f.name  # what `wc -l` counts
        assert labels.min() >= 0 and labels.max() < 48
        assert labels[0] == mapping["SIL"]  # every sample starts with background
    cereals = read_ground_truth(BREAKFAST / "groundTruth" / "P16_cam01_P16_cereals.txt", mapping)
    assert cereals.shape == (544,)
    runs = [int(cereals[0])] + [int(b) for a, b in itertools.pairwise(cereals) if a != b]
    assert [list(mapping)[r] for r in runs] == ["SIL", "pour_cereals", "pour_milk", "SIL"]


@needs_breakfast
def test_breakfast_round_trips_byte_for_byte(tmp_path: Path) -> None:
    mapping = read_mapping(BREAKFAST / "mapping.txt")
    write_mapping(tmp_path / "mapping.txt", mapping)
    assert (tmp_path / "mapping.txt").read_bytes() == (BREAKFAST / "mapping.txt").read_bytes()
    for f in sorted((BREAKFAST / "groundTruth").glob("*.txt"))[:6]:
        labels = read_ground_truth(f, mapping)
        write_ground_truth(tmp_path / f.name, labels, mapping)
        assert (tmp_path / f.name).read_bytes() == f.read_bytes()
        stem = video_id_of(f.name)
        write_prediction(tmp_path / stem, labels, mapping)  # MS-TCN names results without extension
        assert np.array_equal(read_prediction(tmp_path / stem, mapping), labels)
        write_prediction(tmp_path / f"{stem}.plain", torch.from_numpy(labels), mapping, style="plain")
        assert (tmp_path / f"{stem}.plain").read_bytes() == f.read_bytes()


# ---------------------------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 a\n1 b\n1 c\n", "[line 3]: id 1 is also on line 2"),
        ("0 a\n1 b\n2 a\n", "[line 3]: class 'a' is also on line 1"),
        ("0 a\n2 b\n", "[line 2]: ids must be 0..1: id 2 is out of range, id 1 is missing"),
        ("0 a\n-1 b\n", "[line 2]: ids must be 0..1: id -1 is out of range"),
        ("0 a\nb 1\n", "[line 2]: expected 'idx name', got 'b 1'"),
        ("0 a\n1 two words\n", "[line 2]: expected 'idx name'"),
        ("0 a\n\n1 b\n", "[line 2]: blank line"),
        ("", ": empty file"),
        ("\n\n", ": empty file"),
    ],
    ids=["dup_id", "dup_name", "gap", "negative", "swapped", "spaces", "blank", "empty", "only_newlines"],
)
def test_mapping_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path / "mapping.txt", text)
    msg = _err(read_mapping, path)
    assert msg.startswith(str(path)) and expected in msg, msg


def test_mapping_accepts_unordered_lines_and_crlf(tmp_path: Path) -> None:
    path = _write(tmp_path / "mapping.txt", "1 b\r\n0 a\r\n")
    assert read_mapping(path) == {"a": 0, "b": 1}
    with pytest.raises(DataFormatError, match=r"class ids must be 0\.\.1"):
        write_mapping(tmp_path / "m2.txt", {"a": 0, "b": 2})
    with pytest.raises(DataFormatError, match="contains whitespace"):
        write_mapping(tmp_path / "m2.txt", ["a b"])
    assert not (tmp_path / "m2.txt").exists()


# ---------------------------------------------------------------------------------------------
# Ground truth and predictions
# ---------------------------------------------------------------------------------------------
def test_ground_truth_unknown_label_names_line_and_close_matches(tmp_path: Path) -> None:
    path = _write(tmp_path / "vid.txt", "SIL\nSIL\npour_milkk\nSIL\n")
    msg = _err(read_ground_truth, path, CLASSES)
    assert msg.startswith(str(path))
    assert "[line 3]: unknown label 'pour_milkk' (not in the mapping); close names: 'pour_milk'" in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ": empty file"),
        ("SIL\n\nSIL\n", "[line 2]: blank line"),
        (f"{PREDICTION_HEADER}\n", "[line 2]: no labels after the '### Frame level recognition: ###' line"),
        (f"{PREDICTION_HEADER}\nSIL SIL\nSIL\n", "[line 3]: expected one line of space-separated labels"),
        (f"{PREDICTION_HEADER}\nSIL SIL take_bwl SIL", "[line 2, frame 2]: unknown label 'take_bwl'"),
    ],
    ids=["empty", "blank", "header_only", "extra_line", "unknown_in_header_style"],
)
def test_prediction_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path / "pred", text)
    msg = _err(read_prediction, path, CLASSES)
    assert msg.startswith(str(path)) and expected in msg, msg


def test_prediction_styles(tmp_path: Path) -> None:
    labels = np.array([0, 0, 1, 1, 1, 2, 0], dtype=np.int64)
    write_prediction(tmp_path / "ms", labels, CLASSES)
    text = (tmp_path / "ms").read_text()
    assert text == "### Frame level recognition: ###\nSIL SIL take_bowl take_bowl take_bowl pour_cereals SIL"
    assert text.split("\n")[1].split() == [CLASSES[i] for i in labels]  # how MS-TCN's eval.py reads it
    write_prediction(tmp_path / "plain.txt", [CLASSES[i] for i in labels], CLASSES, style="plain")
    assert (tmp_path / "plain.txt").read_text() == "".join(f"{CLASSES[i]}\n" for i in labels)
    for name in ("ms", "plain.txt"):
        back = read_prediction(tmp_path / name, CLASSES)
        assert back.dtype == np.int64 and np.array_equal(back, labels)
        assert read_frame_names(tmp_path / name) == [CLASSES[i] for i in labels]
    mapping_file = tmp_path / "mapping.txt"
    write_mapping(mapping_file, CLASSES)
    assert np.array_equal(read_ground_truth(tmp_path / "plain.txt", mapping_file), labels)


def test_writers_reject_bad_labels_and_leave_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataFormatError, match=r"p: label 9 at frame 1 is not an id of the mapping"):
        write_prediction(tmp_path / "p", [0, 9], CLASSES)
    with pytest.raises(DataFormatError, match=r"g\.txt: invalid label 'nope' at frame 0"):
        write_ground_truth(tmp_path / "g.txt", ["nope"], CLASSES)
    with pytest.raises(DataFormatError, match="integer labels need the mapping"):
        write_ground_truth(tmp_path / "g.txt", [0, 1])
    with pytest.raises(DataFormatError, match="no frames to write"):
        write_prediction(tmp_path / "p", [], CLASSES)

    def broken(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError):
        write_ground_truth(tmp_path / "g.txt", [0, 1], CLASSES)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Bundles
# ---------------------------------------------------------------------------------------------
def test_bundle_round_trip_and_errors(tmp_path: Path) -> None:
    names = ["P03_cam01_P03_cereals.txt", "P04_webcam02_P04_milk.txt"]
    write_bundle(tmp_path / "test.split1.bundle", names)
    assert (tmp_path / "test.split1.bundle").read_text() == "P03_cam01_P03_cereals.txt\nP04_webcam02_P04_milk.txt\n"
    assert read_bundle(tmp_path / "test.split1.bundle") == names
    dup = _write(tmp_path / "dup.bundle", "a.txt\nb.txt\na.txt\n")
    assert "dup.bundle [line 3]: 'a.txt' is listed twice (also on line 1)" in _err(read_bundle, dup)
    assert "empty file" in _err(read_bundle, _write(tmp_path / "e.bundle", ""))
    assert "file not found; close names: 'test.split1.bundle'" in _err(read_bundle, tmp_path / "test.split2.bundle")
    with pytest.raises(DataFormatError, match="no videos to write"):
        write_bundle(tmp_path / "x.bundle", [])


def test_video_id_of() -> None:
    assert video_id_of("P03_cam01_P03_cereals.txt") == "P03_cam01_P03_cereals"
    assert video_id_of("./data/groundTruth/rgb-01-1.txt") == "rgb-01-1"
    assert video_id_of("S1_Cheese_C1") == "S1_Cheese_C1"
