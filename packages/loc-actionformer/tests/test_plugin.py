"""Registration through the `tal` entry points, and the model against core's conformance suite."""

from __future__ import annotations

import pytest
import torch
from synth_data import TINY_MODEL

from tal.core.registry import get_registry
from tal.core.testing import ModelConformance


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
