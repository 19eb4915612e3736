"""Registration through the `tal` entry points, the synthetic data generator and the demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synth_data import TINY_MODEL

from tal.core.formats import read_annotations, read_features
from tal.core.registry import get_registry
from tal.core.testing import ModelConformance
from tal.loc_actionformer.synthetic import FEAT_STRIDE, FPS, NUM_FRAMES, SyntheticSpec, write_synthetic_thumos


def test_plugin_registers_everything() -> None:
    registry = get_registry()
    report = next(p for p in registry.plugins if p.name == "loc-actionformer")
    assert report.status == "ok", report.error
    assert report.registered["models"] == ["actionformer"]
    assert report.registered["datasets"] == ["actionformer-features"]
    assert report.registered["commands"] == ["actionformer"]
    assert report.registered["inferencers"] == ["actionformer"]
    assert report.registered["checkpoint_formats"] == ["actionformer-release"]
    assert report.registered["demos"] == ["loc-actionformer"]
    assert "loc-actionformer/thumos_i3d" in report.registered["presets"]


class TestModelConformance(ModelConformance):
    name = "actionformer"
    overrides = {k: v for k, v in TINY_MODEL.items() if k != "name"}

    def batch(self) -> dict:
        return {
            "video_ids": ["a", "b"],
            "features": [torch.randn(16, 64), torch.randn(16, 40)],
            "segments": [torch.tensor([[3.0, 12.0]]), torch.tensor([[10.0, 13.0]])],
            "labels": [torch.tensor([0]), torch.tensor([2])],
            "fps": [30.0, 30.0],
            "feat_stride": [4, 4],
            "num_frames": [16, 16],
            "duration": [9.0, 6.0],
        }

    @pytest.fixture(autouse=True)
    def _needs_nms(self) -> None:
        pytest.importorskip("tal.cuda_ops")


def test_synthetic_thumos_files(tmp_path: Path) -> None:
    spec = SyntheticSpec(num_train=4, num_val=2, seed=3)
    ann_file, feat_dir = write_synthetic_thumos(tmp_path, spec)
    ann = read_annotations(ann_file)
    assert sorted(ann.subsets) == ["test", "validation"] and len(ann) == 6
    assert ann.num_classes <= spec.num_classes
    for video in ann:
        feats = read_features(feat_dir / f"{video.video_id}.npy")
        assert video.duration is not None and video.fps == FPS
        assert spec.min_duration <= video.duration <= spec.max_duration
        assert feats.shape == (spec.input_dim, int((video.duration * FPS - NUM_FRAMES) // FEAT_STRIDE) + 1)
        segs = video.segments.segments
        assert 2 <= len(segs) <= 6
        assert (segs[:, 0] >= 0).all() and (segs[:, 1] <= video.duration).all()
        assert (segs[1:, 0] >= segs[:-1, 1]).all()  # ordered, not overlapping
        lengths = segs[:, 1] - segs[:, 0]
        assert (lengths >= 1.0).all() and (lengths <= 10.0 + 1e-6).all()
    # an action adds its class pattern: its steps are far from the background
    video = next(iter(ann))
    feats = read_features(feat_dir / f"{video.video_id}.npy")
    centre = (video.segments.segments.mean(1) * FPS - NUM_FRAMES / 2) / FEAT_STRIDE
    inside = feats[:, centre.round().long()].norm(dim=0)
    assert float(inside.mean()) > float(feats.norm(dim=0).median())


def test_quick_demo_writes_results_and_figure(tmp_path: Path) -> None:
    pytest.importorskip("tal.cuda_ops")
    from tal.loc_actionformer.demo import run_demo

    out = run_demo(tmp_path, quick=True)
    assert set(out) == {"average_mAP", "mAP@0.5", "seconds"} and 0 <= out["average_mAP"] <= 100
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert len(results) == 8
    for dets in results.values():
        scores = [d["score"] for d in dets]
        assert scores == sorted(scores, reverse=True) and all(isinstance(d["label"], int) for d in dets)
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert np.isfinite(out["seconds"])
