"""Datasets: splits, carved validation, sampling rate, bad input, the demo's synthetic Breakfast data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BREAKFAST
from synth_data import write_dataset

from tal.core.errors import ConfigError, DataFormatError
from tal.seg_tst.data import (
    SegDataset,
    SegDatasetConfig,
    SyntheticBreakfast,
    SyntheticBreakfastConfig,
    carve_validation,
    held_out_videos,
)


def _cfg(root: Path, **kw) -> SegDatasetConfig:
    return SegDatasetConfig(root=str(root), input_dim=8, **kw)


def test_carve_validation_is_deterministic_and_disjoint() -> None:
    entries = [f"v{i}.txt" for i in range(10)]
    train, val = carve_validation(entries, 0.15, 0)
    assert len(val) == 2 and len(train) == 8 and set(train).isdisjoint(val)
    assert carve_validation(entries, 0.15, 0) == (train, val)
    assert train == sorted(train) and val == sorted(val)  # bundle order kept
    assert carve_validation(["a"], 0.5, 0) == (["a"], [])
    assert carve_validation(entries, 0.0, 0) == (entries, [])


def test_subsets_partition_the_training_bundle(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    sets = {s: SegDataset(_cfg(root, subset=s)) for s in ("train", "val", "test", "trainval")}
    assert set(sets["train"].video_ids) | set(sets["val"].video_ids) == set(sets["trainval"].video_ids)
    assert not set(sets["train"].video_ids) & set(sets["val"].video_ids)
    assert sets["test"].video_ids == ["vid06", "vid07"]
    batch = sets["train"].collate([sets["train"][0], sets["train"][1]])
    assert batch["features"].shape[1] == 8 and batch["sample_rate"] == 1
    assert batch["class_counts"].sum() == sum(len(sets["train"][i].frame_labels) for i in range(len(sets["train"])))


def test_dataset_rules_sample_rate_and_splits(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, splits=5)
    ds = SegDataset(_cfg(root, dataset="50salads", split=5))
    assert ds.sample_rate == 8
    assert SegDataset(_cfg(root, dataset="50salads", sample_rate=2)).sample_rate == 2
    with pytest.raises(ConfigError, match="splits"):
        SegDataset(_cfg(root, dataset="gtea", split=5))


def test_length_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    feats = np.load(root / "features" / "vid06.npy")
    np.save(root / "features" / "vid06.npy", feats[:, :-3])
    ds = SegDataset(_cfg(root, subset="test"))
    with pytest.raises(DataFormatError, match=r"vid06\.npy.*feature frames but .* labels"):
        ds[0]
    ok = SegDataset(_cfg(root, subset="test", length_mismatch="truncate"))[0]
    assert ok.features.shape[1] == ok.frame_labels.shape[0] == feats.shape[1] - 3


def test_unknown_label_and_empty_video_are_clear_errors(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    gt = root / "groundTruth" / "vid07.txt"
    gt.write_text(gt.read_text().replace("class", "klass", 1))
    with pytest.raises(DataFormatError, match=r"vid07\.txt.*unknown label 'klass"):
        SegDataset(_cfg(root, subset="test"))
    gt.write_text("")
    with pytest.raises(DataFormatError, match=r"vid07\.txt.*empty"):
        SegDataset(_cfg(root, subset="test"))


def test_wrong_channels_and_missing_folder(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    with pytest.raises(DataFormatError, match="expected 16 channels"):
        SegDataset(SegDatasetConfig(root=str(root), input_dim=16, subset="test"))[0]
    with pytest.raises(DataFormatError, match="dataset folder not found"):
        SegDataset(_cfg(tmp_path / "nope"))


def test_held_out_videos_rule() -> None:
    stems = ["P16_cam01_P16_tea", "P17_cam01_P17_tea", "P17_cam01_P17_coffee", "P18_cam01_P18_milk"]
    assert held_out_videos(stems, "P17") == ["P17_cam01_P17_tea"]


def test_synthetic_breakfast_uses_the_real_labels() -> None:
    if not (BREAKFAST / "mapping.txt").is_file():
        pytest.skip(f"{BREAKFAST} not found")
    cfg = SyntheticBreakfastConfig(root=str(BREAKFAST), stride=1, subset="all")
    ds = SyntheticBreakfast(cfg)
    assert len(ds) == 20 and ds.num_classes == 48
    rec = ds[0]
    from tal.core.formats import read_ground_truth

    gt = read_ground_truth(BREAKFAST / "groundTruth" / f"{ds.video_ids[0]}.txt", BREAKFAST / "mapping.txt")
    assert rec.frame_labels.tolist() == gt.tolist()
    assert rec.features.shape == (32, len(gt))
    assert torch.equal(ds[0].features, rec.features)  # deterministic per index
    test = SyntheticBreakfast(SyntheticBreakfastConfig(root=str(BREAKFAST), subset="test"))
    train = SyntheticBreakfast(SyntheticBreakfastConfig(root=str(BREAKFAST), subset="train"))
    assert all(v.startswith("P17_") for v in test.video_ids) and len(test) + len(train) == 20
