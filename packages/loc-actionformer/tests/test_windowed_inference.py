"""Windowed inference of long videos: receptive radius, window layout, and detections equal to a whole run."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config
from pydantic import ValidationError

from tal.loc_actionformer import ActionFormer
from tal.loc_actionformer.postprocess import receptive_radius, window_bounds, window_context


def test_receptive_radius_by_hand() -> None:
    cfg = tiny_config()  # arch (2, 2, 2), kernels 3, windows 5 (2 each side), 3 head layers
    # embedding 2 x 1; stem 2 x (1 + 2); branch: 1 x 1 + 2 x 2 and 2 x 1 + 4 x 2; heads at stride 4: 3 x 1 x 4
    assert receptive_radius(cfg) == 2 + 6 + 5 + 10 + 12
    assert receptive_radius(tiny_config(n_mha_win_size=[5, 5, -1])) is None  # global attention
    assert receptive_radius(tiny_config(use_abs_pe=True)) is None
    assert window_context(tiny_config(infer_window=128)) == 48  # 35 rounded up to a multiple of 16
    assert window_context(tiny_config(infer_window=128, infer_context=3)) == 16


def test_window_bounds_tile_the_sequence() -> None:
    assert window_bounds(100, 64, 16) == [(0, 48, 0, 32), (16, 80, 32, 64), (48, 100, 64, 96), (80, 100, 96, 100)]
    with pytest.raises(ValueError, match="no core"):
        window_bounds(100, 32, 16)
    with pytest.raises(ValidationError, match="multiple of the largest stride"):
        tiny_config(infer_window=100)


@pytest.mark.parametrize("length", [300, 257])
def test_windowed_detections_equal_a_whole_run(length: int) -> None:
    torch.manual_seed(1)
    whole = ActionFormer(tiny_config(test_cfg={"nms_method": "none"})).eval()
    windowed = ActionFormer(tiny_config(test_cfg={"nms_method": "none"}, infer_window=128)).eval()
    windowed.load_state_dict(whole.state_dict())
    feats = torch.randn(16, length)
    with torch.no_grad():
        inputs, masks = whole.preprocess([feats])
        ref = whole.forward_features(inputs, masks)
        got = windowed.windowed_outputs(feats)
        for a, b in zip(ref[0], got[0], strict=True):
            torch.testing.assert_close(a, b)  # points
        for a, b in zip(ref[1], got[1], strict=True):
            assert torch.equal(a, b)  # masks
        for part in (2, 3):  # logits and offsets
            for a, b in zip(ref[part], got[part], strict=True):
                torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
        batch = {"features": [feats], "fps": [30.0], "feat_stride": [4], "num_frames": [16], "duration": [60.0]}
        (d_whole,), (d_win,) = whole(batch), windowed(batch)
    assert len(d_whole) == len(d_win) > 0
    torch.testing.assert_close(d_win.segments, d_whole.segments, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(d_win.scores, d_whole.scores, atol=1e-5, rtol=1e-5)
    assert torch.equal(d_win.labels, d_whole.labels)


def test_short_videos_are_not_windowed() -> None:
    model = ActionFormer(tiny_config(test_cfg={"nms_method": "none"}, infer_window=128)).eval()
    calls = []
    model.forward_features = lambda *a: calls.append(a[0].shape) or ActionFormer.forward_features(model, *a)  # type: ignore[method-assign]
    with torch.no_grad():
        model.detect([torch.randn(16, 100), torch.randn(16, 300)])
    # one padded batch for the short video, then windows of at most 128 steps for the long one
    assert calls[0] == (1, 16, 112) and all(s[-1] <= 128 for s in calls[1:]) and len(calls) > 2
