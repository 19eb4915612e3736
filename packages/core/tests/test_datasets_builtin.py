"""Built-in datasets: activitynet-features, mstcn, synthetic-segmentation; collate and registration."""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from tal.core import hookimpl, protocols
from tal.core.datasets import (
    IGNORE_INDEX,
    ActivityNetFeatures,
    ActivityNetFeaturesConfig,
    MSTCNConfig,
    MSTCNDataset,
    SyntheticSegmentation,
    SyntheticSegmentationConfig,
    register,
)
from tal.core.errors import DataFormatError, DuplicateComponentError
from tal.core.formats import read_ground_truth, read_mapping, write_bundle, write_features
from tal.core.registry import Registry, load_registry
from tal.core.testing import DatasetConformance
from tal.core.types import Segments, VideoRecord

BREAKFAST = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "segmentation" / "breakfast"
needs_breakfast = pytest.mark.skipif(
    not (BREAKFAST / "mapping.txt").is_file(), reason=f"Breakfast sample files not found at {BREAKFAST}"
)


# ---------------------------------------------------------------------------------------------
# activitynet-features
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def thumos_like(tmp_path: Path) -> Path:
    database = {
        "video_validation_01": {
            "subset": "Validation",
            "duration": 10.0,
            "fps": 30.0,
            "annotations": [
                {"label": "Billiards", "segment": [1.0, 2.5], "label_id": 2},
                {"label": "Diving", "segment": [4.0, 6.0], "label_id": 7},
            ],
        },
        "video_validation_02": {  # no duration: derived from the features
            "subset": "Validation",
            "fps": 25.0,
            "annotations": [{"label": "Diving", "segment": [0.5, 1.0], "label_id": 7}],
        },
        "video_test_01": {"subset": "Test", "duration": 8.0, "annotations": []},  # no fps
    }
    (tmp_path / "thumos.json").write_text(json.dumps({"version": "t", "database": database}))
    feats = tmp_path / "i3d"
    rng = np.random.default_rng(0)
    for vid, steps in (("video_validation_01", 70), ("video_validation_02", 40), ("video_test_01", 55)):
        np.save(feats / f"{vid}.npy" if feats.exists() else _mkdir(feats) / f"{vid}.npy", rng.normal(size=(steps, 12)))
    return tmp_path


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _anet(root: Path, **kw: Any) -> ActivityNetFeatures:
    base: dict[str, Any] = {
        "annotation_file": str(root / "thumos.json"),
        "feature_dir": str(root / "i3d"),
        "feat_stride": 4,
        "num_frames": 16,
        "subset": "validation",
        "input_dim": 12,
    }
    return ActivityNetFeatures(ActivityNetFeaturesConfig(**{**base, **kw}))


def test_activitynet_items_and_collate(thumos_like: Path) -> None:
    ds = _anet(thumos_like)
    assert isinstance(ds, protocols.Dataset)
    assert len(ds) == 2 and ds.video_ids == ["video_validation_01", "video_validation_02"]
    assert ds.num_classes == 8 and ds.class_names[7] == "Diving"
    r = ds[0]
    assert isinstance(r, VideoRecord)
    assert r.features is not None and r.features.shape == (12, 70) and r.features.dtype == torch.float32
    assert (r.fps, r.feat_stride, r.num_frames, r.duration) == (30.0, 4.0, 16.0, 10.0)
    assert r.segments is not None and r.segments.segments.tolist() == [[1.0, 2.5], [4.0, 6.0]]
    assert r.segments.labels.tolist() == [2, 7] and r.meta["subset"] == "Validation"
    assert ds[1].duration == pytest.approx((39 * 4 + 16) / 25.0)

    batch = ds.collate([ds[0], ds[1]])
    assert batch["video_ids"] == ["video_validation_01", "video_validation_02"]
    assert batch["features"].shape == (2, 12, 70) and batch["mask"].shape == (2, 1, 70)
    assert batch["mask"].dtype == torch.bool
    assert batch["mask"][0].all() and batch["mask"][1, 0, :40].all() and not batch["mask"][1, 0, 40:].any()
    assert torch.equal(batch["features"][1, :, :40], ds[1].features)
    assert (batch["features"][1, :, 40:] == 0).all()
    assert all(isinstance(t, Segments) for t in batch["targets"]) and len(batch["targets"][1]) == 1
    assert [rec.video_id for rec in batch["records"]] == batch["video_ids"]


def test_activitynet_options(thumos_like: Path) -> None:
    ds = _anet(thumos_like, downsample_rate=3, default_fps=10.0)
    r = ds[0]
    assert r.features is not None and r.features.shape == (12, 24) and r.feat_stride == 12.0 and r.fps == 10.0
    test = _anet(thumos_like, subset="test", default_fps=30.0)
    assert len(test) == 1 and len(test[0].segments or []) == 0
    assert len(test.collate([test[0]])["targets"][0]) == 0


def test_activitynet_errors(thumos_like: Path) -> None:
    with pytest.raises(
        DataFormatError, match=r"\[database.video_test_01\]: no 'fps' for this video and no default_fps"
    ):
        _anet(thumos_like, subset="test")
    with pytest.raises(DataFormatError, match="expected 2048 channels, got 12"):
        _anet(thumos_like, input_dim=2048)[0]
    (thumos_like / "i3d" / "video_validation_02.npy").rename(thumos_like / "i3d" / "video_validation_2.npy")
    with pytest.raises(DataFormatError, match=r"no feature file for video 'video_validation_02'; close names"):
        _anet(thumos_like)
    ds = _anet(thumos_like, missing_features="skip")
    assert ds.video_ids == ["video_validation_01"] and ds.skipped == ["video_validation_02"]
    with pytest.raises(ValidationError):
        ActivityNetFeaturesConfig(annotation_file="a", feature_dir="b", feat_stride=0, num_frames=16)


# ---------------------------------------------------------------------------------------------
# mstcn
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def mstcn_root(tmp_path: Path) -> Path:
    """Breakfast ground truth + random (C, T) features in MS-TCN's layout (one video 3 steps longer)."""
    if not (BREAKFAST / "mapping.txt").is_file():
        pytest.skip(f"Breakfast sample files not found at {BREAKFAST}")
    root = tmp_path / "breakfast"
    (root / "groundTruth").mkdir(parents=True)
    shutil.copy(BREAKFAST / "mapping.txt", root / "mapping.txt")
    videos = ["P16_cam01_P16_cereals", "P17_cam01_P17_coffee", "P18_cam01_P18_coffee"]
    rng = np.random.default_rng(1)
    for i, vid in enumerate(videos):
        shutil.copy(BREAKFAST / "groundTruth" / f"{vid}.txt", root / "groundTruth" / f"{vid}.txt")
        frames = (BREAKFAST / "groundTruth" / f"{vid}.txt").read_bytes().count(b"\n")
        write_features(
            root / "features" / f"{vid}.npy", rng.normal(size=(8, frames + (3 if i == 1 else 0))), layout="CT"
        )
    write_bundle(root / "splits" / "test.split1.bundle", [f"{v}.txt" for v in videos])
    return root


def test_mstcn_items_match_breakfast_files(mstcn_root: Path) -> None:
    ds = MSTCNDataset(MSTCNConfig(root=str(mstcn_root), split="test.split1.bundle", input_dim=8))
    assert isinstance(ds, protocols.Dataset)
    assert len(ds) == 3 and ds.num_classes == 48 and ds.class_names[0] == "SIL"
    mapping = read_mapping(mstcn_root / "mapping.txt")
    r = ds[0]
    gt = read_ground_truth(mstcn_root / "groundTruth" / "P16_cam01_P16_cereals.txt", mapping)
    assert r.video_id == "P16_cam01_P16_cereals" and r.features is not None and r.features.shape == (8, 544)
    assert r.frame_labels is not None and torch.equal(r.frame_labels, torch.from_numpy(gt))
    assert r.duration == pytest.approx(544 / 15.0)
    longer = ds[1]  # features have 3 extra steps: cut to the label count, as MS-TCN does
    assert longer.meta["feature_steps"] == longer.meta["label_frames"] + 3 == 362
    assert longer.num_steps == 359 and longer.frame_labels is not None and longer.frame_labels.shape == (359,)


def test_mstcn_sample_rate_and_collate(mstcn_root: Path) -> None:
    ds = MSTCNDataset(MSTCNConfig(root=str(mstcn_root), split="test.split1.bundle", sample_rate=2))
    full = MSTCNDataset(MSTCNConfig(root=str(mstcn_root), split="test.split1.bundle"))
    r, f = ds[0], full[0]
    assert r.features is not None and f.features is not None
    assert r.frame_labels is not None and f.frame_labels is not None
    assert r.num_steps == 272 and r.feat_stride == 2.0
    assert torch.equal(r.features, f.features[:, ::2]) and torch.equal(r.frame_labels, f.frame_labels[::2])
    items = [ds[0], ds[1], ds[2]]
    batch = ds.collate(items)
    lengths = [it.num_steps for it in items]
    t_max = max(lengths)
    assert batch["features"].shape == (3, 8, t_max) and batch["labels"].shape == (3, t_max)
    assert batch["mask"].shape == (3, 1, t_max) and batch["labels"].dtype == torch.int64
    for i, n in enumerate(lengths):
        assert torch.equal(batch["labels"][i, :n], items[i].frame_labels)
        assert (batch["labels"][i, n:] == IGNORE_INDEX).all()
        assert batch["mask"][i, 0, :n].all() and not batch["mask"][i, 0, n:].any()
        assert batch["targets"][i].shape == (n,) and batch["targets"][i].dtype == torch.int64


def test_mstcn_entries_select_videos_and_label_counts_cover_them(mstcn_root: Path) -> None:
    cfg = MSTCNConfig(root=str(mstcn_root), split="test.split1.bundle", sample_rate=2)
    picked = ["P18_cam01_P18_coffee.txt", "P16_cam01_P16_cereals.txt"]
    ds = MSTCNDataset(cfg, entries=picked)
    assert ds.video_ids == ["P18_cam01_P18_coffee", "P16_cam01_P16_cereals"]  # the given order
    mapping = read_mapping(mstcn_root / "mapping.txt")
    gts = [read_ground_truth(mstcn_root / "groundTruth" / e, mapping) for e in picked]
    expected = np.zeros(48, dtype=np.int64)
    for gt in gts:  # full-rate frames, whatever the sample rate
        for label in gt:
            expected[label] += 1
    assert ds.label_counts().dtype == np.int64 and ds.label_counts().tolist() == expected.tolist()
    r = ds[1]
    assert r.meta["feature_file"] == str(mstcn_root / "features" / "P16_cam01_P16_cereals.npy")
    assert r.meta["label_file"] == str(mstcn_root / "groundTruth" / "P16_cam01_P16_cereals.txt")


def test_mstcn_errors(mstcn_root: Path) -> None:
    cfg = {"root": str(mstcn_root), "split": "test.split1.bundle"}
    with pytest.raises(DataFormatError, match=r"362 feature steps but 359 frames"):
        MSTCNDataset(MSTCNConfig(**cfg, length_mismatch="error"))[1]
    with pytest.raises(
        DataFormatError, match=r"test\.split2\.bundle: file not found; close names: 'test\.split1\.bundle'"
    ):
        MSTCNDataset(MSTCNConfig(**{**cfg, "split": "test.split2.bundle"}))
    (mstcn_root / "features" / "P18_cam01_P18_coffee.npy").unlink()
    with pytest.raises(DataFormatError, match="no feature file for video 'P18_cam01_P18_coffee'"):
        MSTCNDataset(MSTCNConfig(**cfg))
    gt = mstcn_root / "groundTruth" / "P17_cam01_P17_coffee.txt"
    gt.write_text(gt.read_text().replace("pour_coffee", "pour_cofee", 1))
    with pytest.raises(DataFormatError, match=r"P17_cam01_P17_coffee.txt \[line \d+\]: unknown label 'pour_cofee'"):
        MSTCNDataset(MSTCNConfig(**cfg))


# ---------------------------------------------------------------------------------------------
# synthetic-segmentation
# ---------------------------------------------------------------------------------------------
def test_synthetic_is_deterministic_and_order_independent() -> None:
    a = SyntheticSegmentation(SyntheticSegmentationConfig(seed=3))
    b = SyntheticSegmentation(SyntheticSegmentationConfig(seed=3))
    later = b[5]
    first = a[5]
    assert first.features is not None and later.features is not None
    assert torch.equal(first.features, later.features) and torch.equal(first.frame_labels, later.frame_labels)  # type: ignore[arg-type]
    other = SyntheticSegmentation(SyntheticSegmentationConfig(seed=4))[5]
    assert other.features is not None and not torch.equal(other.features, first.features)
    assert a[-1].video_id == a[7].video_id == "synthetic_0007"
    with pytest.raises(IndexError):
        a[8]


def test_synthetic_structure() -> None:
    cfg = SyntheticSegmentationConfig(num_videos=20, num_classes=7, input_dim=5, min_length=30, max_length=90)
    ds = SyntheticSegmentation(cfg)
    assert ds.class_names[0] == "background" and len(ds.class_names) == 7
    order = {int(c): i for i, c in enumerate(ds.order)}
    for i in range(len(ds)):
        r = ds[i]
        assert r.features is not None and r.frame_labels is not None and r.segments is not None
        t = r.num_steps
        assert 30 <= t <= 90 and r.features.shape == (5, t) and r.frame_labels.shape == (t,)
        labels = r.frame_labels
        assert labels[0] == 0 and labels[-1] == 0 and labels.max() < 7
        runs = torch.unique_consecutive(labels)
        actions = [int(x) for x in runs if x != 0]
        assert actions and len(actions) <= cfg.max_actions
        assert [order[a] for a in actions] == sorted(order[a] for a in actions)  # the shared "recipe" order
        assert r.segments.labels.tolist() == actions
        assert (r.segments.segments[:, 1] > r.segments.segments[:, 0]).all()
        assert r.segments.segments.max() <= r.duration == pytest.approx(t / cfg.fps)


def test_synthetic_features_carry_the_class() -> None:
    ds = SyntheticSegmentation(SyntheticSegmentationConfig(num_videos=6, noise=0.5))
    x = torch.cat([ds[i].features.t() for i in range(6)])  # type: ignore[union-attr]
    y = torch.cat([ds[i].frame_labels for i in range(6)])  # type: ignore[misc]
    means = torch.stack([x[y == k].mean(0) for k in range(ds.num_classes) if (y == k).any()])
    present = [k for k in range(ds.num_classes) if (y == k).any()]
    pred = torch.tensor(present)[torch.cdist(x, means).argmin(1)]
    assert (pred == y).float().mean() > 0.8  # chance is well below 0.5
    noisy = SyntheticSegmentation(SyntheticSegmentationConfig(num_videos=6, noise=0.5, separation=0.0))
    assert not torch.equal(noisy[0].features, ds[0].features)  # type: ignore[arg-type]


def test_synthetic_collate_pads_like_mstcn() -> None:
    ds = SyntheticSegmentation(SyntheticSegmentationConfig(min_length=20, max_length=60))
    items = [ds[i] for i in range(4)]
    batch = ds.collate(items)
    t_max = max(it.num_steps for it in items)
    assert set(batch) == {"video_ids", "features", "mask", "labels", "records", "targets"}
    assert batch["features"].shape == (4, 16, t_max) and batch["labels"].shape == (4, t_max)
    for i, it in enumerate(items):
        n = it.num_steps
        assert (batch["labels"][i, n:] == -100).all() and (batch["features"][i, :, n:] == 0).all()
        assert int(batch["mask"][i].sum()) == n


def test_synthetic_config_validation() -> None:
    with pytest.raises(ValidationError, match="max_length"):
        SyntheticSegmentationConfig(min_length=100, max_length=50)
    with pytest.raises(ValidationError):
        SyntheticSegmentationConfig(num_classes=1)
    with pytest.raises(ValidationError, match="extra"):
        SyntheticSegmentationConfig(num_vidoes=3)  # type: ignore[call-arg]


def test_collate_rejects_mixed_channels() -> None:
    a = SyntheticSegmentation(SyntheticSegmentationConfig(input_dim=4))[0]
    b = SyntheticSegmentation(SyntheticSegmentationConfig(input_dim=5))[0]
    with pytest.raises(ValueError, match="same channel count"):
        SyntheticSegmentation(SyntheticSegmentationConfig()).collate([a, b])
    with pytest.raises(ValueError, match="empty batch"):
        SyntheticSegmentation(SyntheticSegmentationConfig()).collate([])


# ---------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------
def test_register_adds_all_three(thumos_like: Path) -> None:
    reg = Registry()
    register(reg)
    assert reg.names("datasets") == ["activitynet-features", "mstcn", "synthetic-segmentation"]
    ds = reg.build("datasets", SyntheticSegmentationConfig(num_videos=2))
    assert isinstance(ds, SyntheticSegmentation) and len(ds) == 2
    cfg = ActivityNetFeaturesConfig(
        annotation_file=str(thumos_like / "thumos.json"),
        feature_dir=str(thumos_like / "i3d"),
        feat_stride=4,
        num_frames=16,
        default_fps=30,
    )
    assert isinstance(reg.build("datasets", cfg), ActivityNetFeatures)
    with pytest.raises(DuplicateComponentError):
        register(reg)


class _EntryPoint:
    name = "core"
    dist = None

    def load(self) -> types.ModuleType:
        module = types.ModuleType("datasets_plugin")

        def register_datasets(registry: Registry) -> None:
            register(registry)

        module.register_datasets = hookimpl(register_datasets)  # type: ignore[attr-defined]
        return module


class TestSyntheticConformance(DatasetConformance):
    name = "synthetic-segmentation"
    overrides: ClassVar[dict[str, Any]] = {"num_videos": 3, "min_length": 16, "max_length": 32}

    def get_registry(self) -> Registry:
        return load_registry([_EntryPoint()], strict=True, disabled=())


@needs_breakfast
def test_mstcn_registered_config_round_trip(mstcn_root: Path) -> None:
    reg = Registry()
    register(reg)
    data = {"name": "mstcn", "root": str(mstcn_root), "split": "test.split1.bundle", "sample_rate": 2}
    cfg = reg.get("datasets", "mstcn").config.model_validate(data)  # type: ignore[union-attr]
    ds = reg.build("datasets", cfg)
    assert isinstance(ds, MSTCNDataset) and ds[0].feat_stride == 2.0
