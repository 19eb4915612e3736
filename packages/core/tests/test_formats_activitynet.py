"""ActivityNet-style annotation and result JSON: reading, writing, round trips and every error."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tal.core.errors import DataFormatError
from tal.core.formats import (
    AnnotationSet,
    DetectionResults,
    VideoAnnotation,
    annotations_to_json,
    atomic,
    parse_annotations,
    read_annotations,
    read_class_list,
    read_results,
    write_annotations,
    write_results,
)
from tal.core.types import Segments

THUMOS: dict[str, Any] = {
    "version": "Thumos14-30fps",
    "database": {
        "video_validation_0000051": {
            "subset": "Validation",
            "duration": 169.79,
            "fps": 30.0,
            "annotations": [
                {"label": "Billiards", "segment": [82.9, 84.3], "segment(frames)": [2487, 2529], "label_id": 2},
                {"label": "Ambiguous", "segment": [90.0, 91.5], "label_id": -1},
            ],
        },
        "video_test_0000004": {
            "subset": "Test",
            "duration": 33.47,
            "fps": 30.0,
            "annotations": [
                {"label": "CricketBowling", "segment": [0.2, 1.1], "segment(frames)": [6, 33], "label_id": 5},
                {"label": "CricketShot", "segment": [0.8, 1.8], "segment(frames)": [24, 54], "label_id": 6},
                {"label": "CricketBowling", "segment": [12.1, 13.0], "label_id": 5},
                {"label": "CricketShot", "segment": [15.0, 16.2], "label_id": 6},
            ],
        },
    },
}

ANET: dict[str, Any] = {  # ActivityNet 1.3 style: no fps, no label_id, extra fields
    "version": "VERSION 1.3",
    "taxonomy": [{"nodeId": 1, "nodeName": "Root", "parentId": None, "parentName": None}],
    "database": {
        "v1": {
            "subset": "training",
            "duration": 82.73,
            "resolution": "1280x720",
            "url": "https://www.youtube.com/watch?v=v1",
            "annotations": [
                {"segment": [0.0, 0.0], "label": "Washing hands"},
                {"segment": [3.5, 9.0], "label": "Archery"},
            ],
        },
        "v2": {"subset": "validation", "duration": 10.0, "annotations": [{"segment": [1.0, 2.0], "label": "Zumba"}]},
        "v3": {"subset": "testing", "duration": 5.0, "annotations": []},
    },
}


def _write(tmp_path: Path, data: Any, name: str = "thumos.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=1))
    return path


def _error(path: Path, **kwargs: Any) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        read_annotations(path, **kwargs)
    return info.value


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def test_read_thumos_style(tmp_path: Path) -> None:
    ann = read_annotations(_write(tmp_path, THUMOS))
    assert ann.version == "Thumos14-30fps"
    assert ann.classes == {2: "Billiards", 5: "CricketBowling", 6: "CricketShot"}
    assert ann.num_classes == 7 and ann.class_names[5] == "CricketBowling" and ann.class_names[0] == ""
    v = ann["video_test_0000004"]
    assert (v.subset, v.duration, v.fps) == ("Test", 33.47, 30.0)
    assert v.segments.segments.dtype == torch.float64
    assert v.segments.segments[3].tolist() == [15.0, 16.2]
    assert v.segments.labels.tolist() == [5, 6, 5, 6]
    assert v.segments.scores is None
    assert v.frames is not None and v.frames[0].tolist() == [6.0, 33.0] and torch.isnan(v.frames[2]).all()
    assert len(ann) == 2 and ann.num_segments == 5 and ann.subsets == ["Test", "Validation"]


def test_ambiguous_is_kept_aside_not_a_class(tmp_path: Path) -> None:
    ann = read_annotations(_write(tmp_path, THUMOS))
    v = ann["video_validation_0000051"]
    assert "Ambiguous" not in ann.label_to_id
    assert len(v.segments) == 1
    assert v.ignored == [{"label": "Ambiguous", "segment": [90.0, 91.5], "label_id": -1}]
    # not ignoring it: its label_id -1 is then invalid
    err = _error(tmp_path / "thumos.json", ignore_labels=())
    assert "[database.video_validation_0000051.annotations[1].label_id]" in str(err)


def test_ignored_entries_are_still_validated(tmp_path: Path) -> None:
    data = copy.deepcopy(THUMOS)
    data["database"]["video_validation_0000051"]["annotations"][1]["segment"] = [92.0, 91.5]
    err = _error(_write(tmp_path, data))
    assert "annotations[1].segment]: end 91.5 < start 92.0" in str(err)


def test_activitynet_style_ids_from_sorted_names(tmp_path: Path) -> None:
    ann = read_annotations(_write(tmp_path, ANET, "anet.json"))
    assert ann.classes == {0: "Archery", 1: "Washing hands", 2: "Zumba"}
    assert ann["v1"].fps is None
    assert ann["v1"].extra == {"resolution": "1280x720", "url": "https://www.youtube.com/watch?v=v1"}
    assert ann.extra == {"taxonomy": ANET["taxonomy"]}
    assert len(ann["v3"].segments) == 0


def test_ids_from_given_classes(tmp_path: Path) -> None:
    path = _write(tmp_path, ANET, "anet.json")
    names = ["Zumba", "Archery", "Washing hands", "Unused class"]
    ann = read_annotations(path, classes=names)
    assert ann.classes == dict(enumerate(names))
    assert ann["v1"].segments.labels.tolist() == [2, 1]
    listfile = tmp_path / "classes.txt"
    listfile.write_text("\n".join(names) + "\n")
    assert read_annotations(path, classes=listfile).classes == ann.classes
    err = _error(path, classes=["Zumba", "Archery", "Washing hand"])
    assert "[database.v1.annotations[0].label]" in str(err) and "'Washing hand'" in str(err)


def test_given_classes_must_agree_with_label_id(tmp_path: Path) -> None:
    names = ["BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving", "CricketShot", "x"]
    err = _error(_write(tmp_path, THUMOS), classes=names)
    assert "unknown label 'CricketBowling'" in str(err)
    names[5], names[6] = "CricketBowling", "CricketShot"
    assert read_annotations(tmp_path / "thumos.json", classes=names).num_classes == 7
    names[5], names[6] = "CricketShot", "CricketBowling"
    err = _error(tmp_path / "thumos.json", classes=names)
    assert "[database.video_test_0000004.annotations[0].label_id]: label_id 5 of 'CricketBowling'" in str(err)


def test_class_list_formats(tmp_path: Path) -> None:
    ego = tmp_path / "ego4d_label_map.txt"
    ego.write_text('000\t"clean_/_repair_(mower,_trimmer_etc.)"\n001\tcut_dough\n007\tuse_phone\n')
    assert read_class_list(ego) == {"clean_/_repair_(mower,_trimmer_etc.)": 0, "cut_dough": 1, "use_phone": 7}
    plain = tmp_path / "names.txt"
    plain.write_text("Blow-drying hair\nPlaying water polo\n")
    assert read_class_list(plain) == {"Blow-drying hair": 0, "Playing water polo": 1}
    plain.write_text("a\nb\na\n")
    with pytest.raises(DataFormatError, match=r"names.txt \[line 3\]: class name 'a' also on line 1"):
        read_class_list(plain)


def test_zero_length_policy(tmp_path: Path) -> None:
    path = _write(tmp_path, ANET, "anet.json")
    assert read_annotations(path)["v1"].segments.segments[0].tolist() == [0.0, 0.0]
    assert read_annotations(path, zero_length="drop")["v1"].segments.segments.tolist() == [[3.5, 9.0]]
    err = _error(path, zero_length="error")
    assert "anet.json [database.v1.annotations[0].segment]: zero-length segment [0.0, 0.0]" in str(err)


def test_filter_by_subset(tmp_path: Path) -> None:
    ann = read_annotations(_write(tmp_path, THUMOS))
    test = ann.filter(subset="test")
    assert list(test.videos) == ["video_test_0000004"] and test.classes == ann.classes
    assert len(ann.filter(subset=["TEST", "validation"])) == 2
    assert list(ann.filter(video_ids=["video_validation_0000051"]).videos) == ["video_validation_0000051"]
    with pytest.raises(DataFormatError, match="no video in subset 'training'; subsets: Test, Validation"):
        ann.filter(subset="training")


# ---------------------------------------------------------------------------------------------
# Errors: each names the file and the entry
# ---------------------------------------------------------------------------------------------
def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = dotted.split("/")
    cur: Any = data
    for p in parents:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    if value is _DELETE:
        del cur[last]
    elif isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return data


_DELETE = object()
_V = "database/video_test_0000004"
_E = "[database.video_test_0000004"

BAD_CASES = [
    (
        "end_before_start",
        f"{_V}/annotations/3/segment",
        [15.0, 12.1],
        f"{_E}.annotations[3].segment]: end 12.1 < start 15.0",
    ),
    ("negative", f"{_V}/annotations/1/segment", [-0.5, 1.0], f"{_E}.annotations[1].segment]: negative time"),
    ("nan", f"{_V}/annotations/2/segment", [math.nan, 13.0], f"{_E}.annotations[2].segment[0]]: not a finite number"),
    ("inf_duration", f"{_V}/duration", math.inf, f"{_E}.duration]: not a finite number"),
    (
        "string_number",
        f"{_V}/annotations/0/segment",
        ["0.2", 1.1],
        f"{_E}.annotations[0].segment[0]]: expected a number",
    ),
    ("bool_number", f"{_V}/fps", True, f"{_E}.fps]: expected a number, got boolean"),
    (
        "segment_arity",
        f"{_V}/annotations/0/segment",
        [0.2, 1.1, 2.0],
        f"{_E}.annotations[0].segment]: expected [start, end]",
    ),
    ("no_segment", f"{_V}/annotations/2/segment", _DELETE, f"{_E}.annotations[2]]: missing key 'segment'"),
    ("no_label", f"{_V}/annotations/2/label", _DELETE, f"{_E}.annotations[2]]: missing key 'label'"),
    ("empty_label", f"{_V}/annotations/2/label", "", f"{_E}.annotations[2].label]: expected a non-empty string"),
    ("no_subset", f"{_V}/subset", _DELETE, f"{_E}]: missing key 'subset'"),
    ("zero_fps", f"{_V}/fps", 0, f"{_E}.fps]: must be > 0, got 0.0"),
    ("negative_duration", f"{_V}/duration", -3.0, f"{_E}.duration]: must be > 0"),
    ("annotations_not_list", f"{_V}/annotations", {"a": 1}, f"{_E}.annotations]: expected an array, got object"),
    (
        "annotation_not_object",
        f"{_V}/annotations/1",
        [0.8, 1.8],
        f"{_E}.annotations[1]]: expected an object, got array",
    ),
    ("video_not_object", _V, [], f"{_E}]: expected an object, got array"),
    ("label_id_float", f"{_V}/annotations/1/label_id", 6.0, f"{_E}.annotations[1].label_id]: expected an integer"),
    ("label_id_bool", f"{_V}/annotations/1/label_id", True, f"{_E}.annotations[1].label_id]: expected an integer"),
    ("label_id_negative", f"{_V}/annotations/1/label_id", -2, f"{_E}.annotations[1].label_id]: must be ≥ 0"),
    (
        "label_id_conflict",
        f"{_V}/annotations/2/label_id",
        7,
        f"{_E}.annotations[2].label_id]: label 'CricketBowling' has label_id 7 here but 5 at "
        "database.video_test_0000004.annotations[0]",
    ),
    (
        "label_id_shared",
        f"{_V}/annotations/1/label_id",
        5,
        f"{_E}.annotations[1].label_id]: label_id 5 is 'CricketShot' here but 'CricketBowling'",
    ),
    ("label_id_mixed", f"{_V}/annotations/3/label_id", _DELETE, f"{_E}.annotations[3]]: missing key 'label_id'"),
    (
        "frames_bad",
        f"{_V}/annotations/0/segment(frames)",
        [33, 6],
        f"{_E}.annotations[0].segment(frames)]: end 6.0 < start",
    ),
    ("no_database", "database", _DELETE, "[<root>]: missing key 'database'"),
    ("database_list", "database", [], "[database]: expected an object, got array"),
]


@pytest.mark.parametrize(("case", "where", "value", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_annotation_errors(tmp_path: Path, case: str, where: str, value: Any, expected: str) -> None:
    path = tmp_path / "thumos.json"
    path.write_text(json.dumps(_set(THUMOS, where, value)))  # json.dumps writes NaN/Infinity literals
    err = _error(path)
    assert str(err).startswith(str(path)), str(err)
    assert expected in str(err), str(err)
    assert err.path == str(path) and err.entry is not None


def test_missing_file_lists_close_names(tmp_path: Path) -> None:
    _write(tmp_path, THUMOS, "thumos14.json")
    err = _error(tmp_path / "thumos14.jsn")
    assert "thumos14.jsn: file not found; close names: 'thumos14.json'" in str(err)


def test_malformed_json_gives_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"database": {\n  "v": {"subset": "test",}\n}}')
    assert "thumos.json: malformed JSON at line 2, column 26" in str(_error(path))


def test_duplicate_video_id(tmp_path: Path) -> None:
    text = '{"database": {"v1": {"subset": "a"}, "v2": {"subset": "a"}, "v1": {"subset": "b"}}}'
    err = _error(_write(tmp_path, text))
    assert "thumos.json [database]: duplicate video id 'v1'" in str(err)


def test_duplicate_key_inside_annotation(tmp_path: Path) -> None:
    text = '{"database": {"v": {"subset": "a", "annotations": [{"label": "x", "segment": [1, 2], "segment": [3, 4]}]}}}'
    assert "[database.v.annotations[0]]: duplicate key 'segment'" in str(_error(_write(tmp_path, text)))


def test_root_must_be_object_and_utf8(tmp_path: Path) -> None:
    assert "[<root>]: expected an object, got array" in str(_error(_write(tmp_path, "[1, 2]")))
    bad = tmp_path / "latin.json"
    bad.write_bytes(b'{"database": {"caf\xe9": {}}}')
    assert "latin.json: not UTF-8 text" in str(_error(bad))


# ---------------------------------------------------------------------------------------------
# Writing and round trips
# ---------------------------------------------------------------------------------------------
def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    for name, data in (("thumos.json", THUMOS), ("anet.json", ANET)):
        first = read_annotations(_write(tmp_path, data, name))
        out = tmp_path / f"out_{name}"
        write_annotations(out, first)
        again = read_annotations(out)
        assert annotations_to_json(again) == annotations_to_json(first)
        assert again.classes == first.classes and again.version == first.version
        for vid, v in first.videos.items():
            w = again[vid]
            assert torch.equal(w.segments.segments, v.segments.segments)
            assert torch.equal(w.segments.labels, v.segments.labels)
            assert (w.frames is None) == (v.frames is None)
            if v.frames is not None:
                assert w.frames is not None and torch.equal(w.frames.nan_to_num(-1), v.frames.nan_to_num(-1))
            assert w.ignored == v.ignored and w.extra == v.extra
    written = json.loads((tmp_path / "out_thumos.json").read_text())
    assert (
        written["database"]["video_test_0000004"]["annotations"][0]
        == THUMOS["database"]["video_test_0000004"]["annotations"][0]
    )


def test_writer_failure_leaves_nothing(tmp_path: Path) -> None:
    ann = read_annotations(_write(tmp_path, THUMOS))
    ann["video_test_0000004"].extra["bad"] = {1, 2}  # a set is not JSON
    out = tmp_path / "out.json"
    with pytest.raises(DataFormatError, match=r"out\.json: cannot write JSON"):
        write_annotations(out, ann)
    assert not out.exists()
    out.write_text("previous")
    with pytest.raises(DataFormatError):
        write_annotations(out, ann)
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "thumos.json"]


def test_writer_failure_on_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ann = read_annotations(_write(tmp_path, THUMOS))
    monkeypatch.setattr(atomic.os, "replace", _raise_oserror)
    with pytest.raises(OSError):
        write_annotations(tmp_path / "out.json", ann)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thumos.json"]


def _raise_oserror(*args: Any) -> None:
    raise OSError("no space left on device")


def test_writer_rejects_unknown_label_ids(tmp_path: Path) -> None:
    ann = AnnotationSet(
        {"v": VideoAnnotation("v", "test", Segments(torch.tensor([[1.0, 2.0]]), torch.tensor([3])))}, {0: "a"}
    )
    with pytest.raises(DataFormatError, match="label id 3 is not a class"):
        write_annotations(tmp_path / "x.json", ann)
    assert not (tmp_path / "x.json").exists()


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
RESULTS: dict[str, Any] = {
    "version": "VERSION 1.3",
    "results": {
        "video_test_0000004": [
            {"segment": [0.3, 1.0], "label": "CricketBowling", "score": 0.9},
            {"segment": [15.1, 16.0], "label": 6, "score": 0.25},
        ],
        "video_validation_0000051": [],
    },
    "external_data": {"used": False, "details": "none"},
}


def test_read_results_names_and_ids(tmp_path: Path) -> None:
    ann = read_annotations(_write(tmp_path, THUMOS))
    res = read_results(_write(tmp_path, RESULTS, "results.json"), classes=ann)
    segs = res.videos["video_test_0000004"]
    assert segs.labels.tolist() == [5, 6]
    assert segs.scores is not None and segs.scores.tolist() == [0.9, 0.25]
    assert segs.segments.tolist() == [[0.3, 1.0], [15.1, 16.0]]
    assert len(res.videos["video_validation_0000051"]) == 0
    assert res.external_data == {"used": False, "details": "none"}


RESULT_ERRORS = [
    ("unknown_name", "label", "CricketBowl", "[results.video_test_0000004[0].label]: unknown label 'CricketBowl'"),
    ("unknown_id", "label", 4, "[results.video_test_0000004[0].label]: unknown label id 4"),
    ("bad_label_type", "label", 1.5, "[results.video_test_0000004[0].label]: expected an integer"),
    ("nan_score", "score", math.nan, "[results.video_test_0000004[0].score]: not a finite number"),
    ("no_score", "score", _DELETE, "[results.video_test_0000004[0]]: missing key 'score'"),
    ("short_segment", "segment", [2.0], "[results.video_test_0000004[0].segment]: expected [start, end]"),
    ("text_time", "segment", ["a", 1.0], "[results.video_test_0000004[0].segment[0]]: expected a number"),
    ("nan_text_time", "segment", ["nan", 1.0], "[results.video_test_0000004[0].segment[0]]: not a finite number"),
    ("nan_time", "segment", [0.0, math.inf], "[results.video_test_0000004[0].segment[1]]: not a finite number"),
    ("text_score", "score", "0.5", "[results.video_test_0000004[0].score]: expected a number"),
    ("no_segment", "segment", _DELETE, "[results.video_test_0000004[0]]: missing key 'segment'"),
]


@pytest.mark.parametrize(("case", "key", "value", "expected"), RESULT_ERRORS, ids=[c[0] for c in RESULT_ERRORS])
def test_result_errors(tmp_path: Path, case: str, key: str, value: Any, expected: str) -> None:
    ann = read_annotations(_write(tmp_path, THUMOS))
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_set(RESULTS, f"results/video_test_0000004/0/{key}", value)))
    with pytest.raises(DataFormatError) as info:
        read_results(path, classes=ann)
    assert str(info.value).startswith(str(path)) and expected in str(info.value), str(info.value)


def test_result_unknown_name_suggests_close_names(tmp_path: Path) -> None:
    path = _write(tmp_path, _set(RESULTS, "results/video_test_0000004/1/label", "CricketShoot"), "r.json")
    with pytest.raises(DataFormatError, match=r"r.json \[results.video_test_0000004\[1\].label\].*'CricketShot'"):
        read_results(path, classes=["CricketBowling", "CricketShot"])


def test_result_names_need_classes_and_duplicate_keys_keep_the_last(tmp_path: Path) -> None:
    path = _write(tmp_path, RESULTS, "r.json")
    with pytest.raises(DataFormatError, match="is a name but no classes were given"):
        read_results(path)
    # json.load keeps the last of repeated keys, and so do the reference evaluators: counted, not refused
    dup = _write(
        tmp_path,
        '{"results": {"a": [{"segment": [0, 1], "label": 0, "score": 0.5}], "b": [], '
        '"a": [{"segment": [2, 3], "label": 0, "score": 0.25, "score": 0.75}]}}',
        "dup.json",
    )
    res = read_results(dup)
    assert res.videos["a"].segments.tolist() == [[2.0, 3.0]] and res.videos["a"].scores.tolist() == [0.75]
    assert res.oddities == {"duplicate_keys": 2}
    with pytest.raises(DataFormatError, match=r"\[<root>\]: missing key 'results'"):
        read_results(_write(tmp_path, {"database": {}}, "x.json"))


def test_results_round_trip_and_label_formats(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    dets = {
        "v1": Segments(torch.tensor([[0.5, 2.25], [3.0, 3.0]]), torch.tensor([2, 0]), torch.tensor([0.75, 0.1])),
        "v2": Segments.empty(with_scores=True),
    }
    write_results(tmp_path / "names.json", dets, classes=names)
    write_results(tmp_path / "ids.json", dets)
    raw_names = json.loads((tmp_path / "names.json").read_text())
    raw_ids = json.loads((tmp_path / "ids.json").read_text())
    assert raw_names["results"]["v1"][0] == {"segment": [0.5, 2.25], "label": "c", "score": 0.75}
    assert raw_ids["results"]["v1"][0]["label"] == 2
    assert raw_names["version"] == "VERSION 1.3" and raw_names["external_data"] == {"used": False, "details": ""}
    for path in ("names.json", "ids.json"):
        back = read_results(tmp_path / path, classes=names)
        for vid, segs in dets.items():
            got = back.videos[vid]
            assert torch.equal(got.segments, segs.segments) and torch.equal(got.labels, segs.labels)
            assert got.scores is not None and segs.scores is not None and torch.equal(got.scores, segs.scores)
    again = tmp_path / "again.json"
    write_results(again, read_results(tmp_path / "names.json", classes=names), classes=names)
    assert json.loads(again.read_text()) == raw_names


def test_results_writer_errors_leave_nothing(tmp_path: Path) -> None:
    no_scores = {"v": Segments(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))}
    with pytest.raises(DataFormatError, match=r"r.json: video 'v': detections need scores"):
        write_results(tmp_path / "r.json", no_scores)
    with pytest.raises(DataFormatError, match="not one of the classes"):
        write_results(
            tmp_path / "r.json",
            {"v": Segments(torch.tensor([[0.0, 1.0]]), torch.tensor([5]), torch.ones(1))},
            classes=["a"],
        )
    bad = DetectionResults({"v": Segments.empty(with_scores=True)}, external_data={"used": object()})
    with pytest.raises(DataFormatError, match="cannot write JSON"):
        write_results(tmp_path / "r.json", bad)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Property tests: write → read is the identity
# ---------------------------------------------------------------------------------------------
_names = st.text(alphabet="abcdefghij XYZ_-", min_size=1, max_size=12)
_times = st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False)


@st.composite
def annotation_sets(draw: st.DrawFn) -> AnnotationSet:
    classes = draw(st.lists(_names, min_size=1, max_size=5, unique=True))
    ids = draw(st.lists(st.integers(0, 50), min_size=len(classes), max_size=len(classes), unique=True))
    vids = draw(st.lists(st.text(alphabet="abc012_.", min_size=1, max_size=10), max_size=5, unique=True))
    videos = {}
    for vid in vids:
        pairs = draw(st.lists(st.tuples(_times, _times), max_size=4))
        segs = [sorted(p) for p in pairs]
        labels = draw(st.lists(st.sampled_from(ids), min_size=len(segs), max_size=len(segs)))
        videos[vid] = VideoAnnotation(
            vid,
            draw(st.sampled_from(["training", "Validation", "test"])),
            Segments(torch.tensor(segs, dtype=torch.float64).reshape(-1, 2), torch.tensor(labels, dtype=torch.int64)),
            duration=draw(st.none() | st.floats(min_value=0.01, max_value=1e5)),
            fps=draw(st.none() | st.floats(min_value=1, max_value=120)),
        )
    return AnnotationSet(videos, dict(zip(ids, classes, strict=True)), version=draw(st.none() | _names))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(aset=annotation_sets())
def test_annotation_round_trip_property(tmp_path: Path, aset: AnnotationSet) -> None:
    path = tmp_path / "prop.json"
    write_annotations(path, aset)
    back = read_annotations(path, ignore_labels=())
    assert back.version == aset.version
    used = {int(x) for v in aset for x in v.segments.labels}
    assert back.classes == {i: n for i, n in aset.classes.items() if i in used}
    assert list(back.videos) == list(aset.videos)
    for vid, v in aset.videos.items():
        w = back[vid]
        assert (w.subset, w.duration, w.fps) == (v.subset, v.duration, v.fps)
        assert torch.equal(w.segments.segments, v.segments.segments)
        assert torch.equal(w.segments.labels, v.segments.labels)
    # written ids only cover used classes; with the full class list every class survives
    full = parse_annotations(annotations_to_json(aset), classes=aset.label_to_id, ignore_labels=())
    assert full.classes == aset.classes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.dictionaries(
        st.text(alphabet="vw0123", min_size=1, max_size=6),
        st.lists(st.tuples(_times, _times, st.integers(0, 3), st.floats(-1e3, 1e3)), max_size=5),
        max_size=4,
    ),
    as_names=st.booleans(),
)
def test_results_round_trip_property(tmp_path: Path, data: dict[str, list[Any]], as_names: bool) -> None:
    dets = {
        vid: Segments(
            torch.tensor([sorted(r[:2]) for r in rows], dtype=torch.float64).reshape(-1, 2),
            torch.tensor([r[2] for r in rows], dtype=torch.int64),
            torch.tensor([r[3] for r in rows], dtype=torch.float64),
        )
        for vid, rows in data.items()
    }
    classes = ["w", "x", "y", "z"]
    path = tmp_path / "res.json"
    write_results(path, dets, classes=classes, label_format="name" if as_names else "id")
    back = read_results(path, classes=classes)
    assert list(back.videos) == list(dets)
    for vid, segs in dets.items():
        got = back.videos[vid]
        assert torch.equal(got.segments, segs.segments) and torch.equal(got.labels, segs.labels)
        assert got.scores is not None and segs.scores is not None and torch.equal(got.scores, segs.scores)


def test_results_accept_what_the_reference_evaluators_score(tmp_path: Path) -> None:
    """Negative starts, inverted and zero-length segments, extra numbers and numeric strings are read as
    the ActivityNet evaluator reads them (float(segment[0]), float(segment[1])) and counted."""
    data = {
        "results": {
            "v": [
                {"segment": [-6.56, 34.31], "label": 0, "score": 0.9},
                {"segment": [5.0, 5.0], "label": 0, "score": 0.8},
                {"segment": [9.0, 7.5], "label": 1, "score": 0.7},
                {"segment": ["1.5", "2.25", 99], "label": 1, "score": 0.6},
                {"segment": [-3, -1], "label": 1, "score": 0.5},
            ]
        }
    }
    res = read_results(_write(tmp_path, data, "odd.json"))
    v = res.videos["v"]
    assert v.segments.tolist() == [[-6.56, 34.31], [5.0, 5.0], [9.0, 7.5], [1.5, 2.25], [-3.0, -1.0]]
    assert res.oddities == {
        "negative_start": 2,
        "zero_length": 1,
        "inverted": 1,
        "extra_numbers": 1,
        "string_numbers": 2,
    }
    line = res.oddity_report()
    assert line is not None and "\n" not in line
    assert "2 predictions start before 0 s" in line and "1 predictions end before they start" in line
    assert line.endswith("scored as given, as the reference evaluators do")
    assert (
        read_results(
            _write(tmp_path, RESULTS, "ok.json"), classes=read_annotations(_write(tmp_path, THUMOS))
        ).oddity_report()
        is None
    )
