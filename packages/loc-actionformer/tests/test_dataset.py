"""The actionformer-features dataset: the release's per-dataset rules on small files made here."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from synth_data import write_set

from tal.core.errors import ConfigError, DataFormatError
from tal.core.formats import read_features
from tal.core.testing import DatasetConformance
from tal.core.types import Segments
from tal.loc_actionformer.data import ActionFormerFeatures, ActionFormerFeaturesConfig, collate, prepare_features


def make(root: Path, **cfg) -> ActionFormerFeatures:
    base = {"annotation_file": str(root / "ann.json"), "feature_dir": str(root / "features")}
    return ActionFormerFeatures(ActionFormerFeaturesConfig(**{**base, **cfg}))


@pytest.fixture
def thumos_dir(tmp_path: Path) -> Path:
    videos = {
        "v1": {"subset": "validation", "steps": 146, "duration": 20.0, "segments": [[1.0, 3.0, 0], [5.0, 6.0, 4]]},
        "v2": {"subset": "test", "steps": 100, "segments": [[2.0, 4.0, 1]]},
        "v3": {"subset": "test", "steps": 50, "skip_features": True, "segments": [[1.0, 2.0, 2]]},
    }
    write_set(tmp_path, videos, {i: f"c{i}" for i in range(5)})
    return tmp_path


def test_seconds_to_grid_and_cliff_diving_is_trained(thumos_dir: Path) -> None:
    ds = make(thumos_dir, subset="validation", default_fps=30, num_classes=5)
    rec = ds[0]
    assert rec.video_id == "v1" and rec.feat_stride == 4 and rec.num_frames == 16 and rec.duration == 20.0
    # (t * 30 - 0.5 * 16) / 4: 1 s -> 5.5, 3 s -> 20.5, 5 s -> 35.5, 6 s -> 43
    torch.testing.assert_close(rec.meta["grid_segments"], torch.tensor([[5.5, 20.5], [35.5, 43.0]]))
    # the release trains Cliff Diving (label 4) since May 2022: every label is a training target
    train = make(thumos_dir, subset="validation", default_fps=30, training=True, max_seq_len=256)
    assert train[0].meta["grid_labels"].tolist() == [0, 4]
    # the older rule on request: left out of the targets, still in the ground truth the metric scores
    old = make(
        thumos_dir, subset="validation", default_fps=30, training=True, max_seq_len=256, train_ignore_label_ids=[4]
    )
    t_rec = old[0]
    assert t_rec.meta["grid_labels"].tolist() == [0]
    assert t_rec.segments is not None and t_rec.segments.labels.tolist() == [0, 4]


def test_missing_features_skipped_for_thumos_and_fatal_for_epic(thumos_dir: Path) -> None:
    ds = make(thumos_dir, subset="test", default_fps=30)
    assert ds.video_ids == ["v2"] and ds.skipped == ["v3"]
    assert ds[0].duration == 1e8  # no duration in the file: the release's placeholder
    with pytest.raises(DataFormatError, match="v3"):
        make(thumos_dir, subset="test", default_fps=30, dataset_name="epic")


def test_downsampling_doubles_the_stride(thumos_dir: Path) -> None:
    rec = make(thumos_dir, subset="validation", default_fps=30, downsample_rate=2)[0]
    assert rec.features is not None and rec.features.shape == (16, 73) and rec.feat_stride == 8
    full = read_features(thumos_dir / "features" / "v1.npy")
    torch.testing.assert_close(rec.features, full[:, ::2])
    torch.testing.assert_close(rec.meta["grid_segments"][0], torch.tensor([(30 - 8) / 8, (90 - 8) / 8]))


def test_training_items_are_cropped_to_max_seq_len(thumos_dir: Path) -> None:
    random.seed(3)
    rec = make(thumos_dir, subset="validation", default_fps=30, training=True, max_seq_len=64)[0]
    assert rec.features is not None and rec.features.shape == (16, 64)
    segs = rec.meta["grid_segments"]
    assert (segs >= -2).all() and (segs <= 66).all()  # clipped to the window +- 0.5 * 16 / 4 steps


def test_fps_is_required(thumos_dir: Path) -> None:
    with pytest.raises(DataFormatError, match="default_fps"):
        make(thumos_dir, subset="validation")


def test_class_count_is_checked(thumos_dir: Path) -> None:
    with pytest.raises(ConfigError, match="num_classes to 5"):
        make(thumos_dir, subset="validation", default_fps=30, num_classes=3)


def test_activitynet_class_agnostic_and_resized(tmp_path: Path) -> None:
    videos = {"a": {"subset": "training", "steps": 50, "duration": 30.0, "segments": [[3.0, 9.0, 7], [20, 30, 2]]}}
    write_set(tmp_path, videos, {i: f"c{i}" for i in range(10)}, channels=8)
    ds = make(
        tmp_path,
        dataset_name="anet",
        num_classes=1,
        default_fps=25,
        feat_stride=16,
        num_frames=16,
        force_upsampling=True,
        max_seq_len=64,
    )
    rec = ds[0]
    stride = (49 * 16 + 16) / 64  # 12.5 frames per resized step, each centred (num_frames = stride)
    assert rec.feat_stride == pytest.approx(stride) and rec.num_frames == pytest.approx(stride)
    raw = read_features(tmp_path / "features" / "a.npy")
    assert rec.features is not None
    torch.testing.assert_close(rec.features, F.interpolate(raw[None], size=64, mode="linear", align_corners=False)[0])
    # t * 25 / 12.5 - 0.5
    torch.testing.assert_close(rec.meta["grid_segments"], torch.tensor([[5.5, 17.5], [39.5, 59.5]]))
    assert rec.meta["grid_labels"].tolist() == [0, 0]  # one "action" class for the model
    assert rec.segments is not None and rec.segments.labels.tolist() == [7, 2]  # real ids for the metric


def test_activitynet_duplicate_annotations_are_one_target(tmp_path: Path) -> None:
    """The release's ANet loader drops an annotation whose label and both ends (within 1e-3 s) repeat an
    earlier kept one; a different label, or an end 0.01 s away, is another annotation."""
    segs = [[3.0, 9.0, 7], [3.0005, 8.9995, 7], [3.0, 9.0, 2], [3.0, 9.01, 7], [20, 30, 2], [20, 30, 2]]
    videos = {"a": {"subset": "training", "steps": 50, "duration": 30.0, "segments": segs}}
    write_set(tmp_path, videos, {i: f"c{i}" for i in range(10)}, channels=8)
    ds = make(tmp_path, dataset_name="anet", num_classes=10, default_fps=25, feat_stride=16, num_frames=16)
    rec = ds[0]
    assert rec.meta["grid_labels"].tolist() == [7, 2, 7, 2]
    expected = torch.tensor([[3.0, 9.0], [3.0, 9.0], [3.0, 9.01], [20.0, 30.0]]) * 25 / 16 - 0.5
    torch.testing.assert_close(rec.meta["grid_segments"], expected)
    assert rec.segments is not None and len(rec.segments) == 6  # the metric sees the file as it is
    thumos = make(tmp_path, dataset_name="thumos", num_classes=10, default_fps=25, feat_stride=16, num_frames=16)
    assert len(thumos[0].meta["grid_labels"]) == 6  # only the ActivityNet loader drops duplicates


def test_activitynet_fixed_length_features(tmp_path: Path) -> None:
    cfg = ActionFormerFeaturesConfig(
        annotation_file="x", feature_dir="y", dataset_name="anet", feat_stride=-1, max_seq_len=64, num_frames=16
    )
    f, stride, nframes = prepare_features(torch.randn(4, 40), cfg, fps=25.0, duration=10.0)
    assert f.shape == (4, 40) and stride == pytest.approx(250 / 40) and nframes == stride
    up = cfg.model_copy(update={"force_upsampling": True})
    f, stride, _ = prepare_features(torch.randn(4, 40), up, fps=25.0, duration=10.0)
    assert f.shape == (4, 64) and stride == pytest.approx(250 / 64)
    with pytest.raises(DataFormatError, match="duration"):
        prepare_features(torch.randn(4, 40), cfg, fps=25.0, duration=None)
    with pytest.raises(DataFormatError, match="max_seq_len"):
        prepare_features(torch.randn(4, 80), cfg, fps=25.0, duration=10.0)
    with pytest.raises(ValidationError, match="fixed-length"):
        ActionFormerFeaturesConfig(annotation_file="x", feature_dir="y", feat_stride=-1)


def test_activitynet_training_drops_segments_past_the_features(tmp_path: Path) -> None:
    # 20 steps of 16 frames at 16 fps: the grid ends at 20 + 0.5; [15 s, 30 s] -> [14.5, 29.5]: 6 of 15 inside
    videos = {"a": {"subset": "training", "steps": 20, "duration": 30.0, "segments": [[2.0, 5.0, 0], [15, 30, 0]]}}
    write_set(tmp_path, videos, {0: "x"}, channels=8)
    kw = {"dataset_name": "anet", "num_classes": 1, "default_fps": 16, "feat_stride": 16, "max_seq_len": 32}
    rec = make(tmp_path, training=True, **kw)[0]
    torch.testing.assert_close(rec.meta["grid_segments"], torch.tensor([[1.5, 4.5]]))
    assert len(make(tmp_path, **kw)[0].meta["grid_segments"]) == 2  # evaluation keeps everything


def test_epic_npz_and_empty_classes(tmp_path: Path) -> None:
    videos = {"P01": {"subset": "training", "steps": 30, "segments": [[1.0, 2.0, 0], [3.0, 4.0, 2]]}}
    write_set(tmp_path, videos, {0: "take", 2: "open"}, ext=".npz", key="feats")
    ds = make(tmp_path, dataset_name="epic", file_ext=".npz", num_classes=5, default_fps=30, feat_stride=16)
    assert ds.empty_label_ids == [1, 3, 4]
    assert ds[0].features is not None and ds[0].features.shape == (16, 30)


def test_ego4d_concatenates_feature_folders(tmp_path: Path) -> None:
    videos = {"clip": {"subset": "training", "steps": 12, "segments": [[0.5, 1.5, 0]]}}
    write_set(tmp_path, videos, {0: "m"}, channels=6, feature_dirs=("omni", "egovlp"))
    dirs = [str(tmp_path / "omni"), str(tmp_path / "egovlp")]
    ds = make(tmp_path, dataset_name="ego4d", feature_dir=dirs, default_fps=30, input_dim=12, feat_stride=16)
    rec = ds[0]
    assert rec.features is not None
    torch.testing.assert_close(rec.features[:6], read_features(tmp_path / "omni" / "clip.npy"))
    torch.testing.assert_close(rec.features[6:], read_features(tmp_path / "egovlp" / "clip.npy"))
    with pytest.raises(DataFormatError, match="input_dim"):
        make(tmp_path, dataset_name="ego4d", feature_dir=dirs, default_fps=30, input_dim=6)[0]


def test_collate_gives_model_and_metric_targets(thumos_dir: Path) -> None:
    ds = make(thumos_dir, default_fps=30, subset=["validation", "test"])
    batch = collate([ds[0], ds[1]])
    assert batch["video_ids"] == ["v1", "v2"]
    assert [f.shape[1] for f in batch["features"]] == [146, 100]
    assert all(isinstance(t, Segments) for t in batch["targets"])
    torch.testing.assert_close(batch["targets"][1].segments, torch.tensor([[2.0, 4.0]], dtype=torch.float64))
    torch.testing.assert_close(batch["segments"][1], torch.tensor([[(60 - 8) / 4, (120 - 8) / 4]]))
    assert batch["fps"] == [30.0, 30.0] and batch["feat_stride"] == [4.0, 4.0] and batch["num_frames"] == [16.0] * 2
    assert ds.collate([ds[0]])["video_ids"] == ["v1"]


class TestConformance(DatasetConformance):
    name = "actionformer-features"

    @pytest.fixture(autouse=True)
    def _data(self, tmp_path: Path) -> None:
        videos = {f"v{i}": {"subset": "test", "steps": 40, "segments": [[1.0, 2.0, i % 2]]} for i in range(3)}
        write_set(tmp_path, videos, {0: "a", 1: "b"})
        self.overrides = {
            "annotation_file": str(tmp_path / "ann.json"),
            "feature_dir": str(tmp_path / "features"),
            "default_fps": 30,
        }
