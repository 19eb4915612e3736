"""Post-processing against hand values and the plain-loop oracle: decoding, NMS and grid → seconds."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config, two_level_model
from oracles.postprocess_loops import loop_postprocess

from tal.loc_actionformer import ActionFormer


def test_decode_by_hand() -> None:
    model = two_level_model()
    model.test_cfg.pre_nms_thresh = 0.5
    model.test_cfg.duration_thresh = 0.05
    pts = model.point_generator([torch.zeros(1, 1, 16), torch.zeros(1, 1, 8)])
    masks = [torch.ones(1, 16, dtype=torch.bool), torch.ones(1, 8, dtype=torch.bool)]
    logits = [torch.full((1, 16, 2), -10.0), torch.full((1, 8, 2), -10.0)]
    offsets = [torch.zeros(1, 16, 2), torch.zeros(1, 8, 2)]
    logits[0][0, 3, 1] = 2.0  # level 0, t = 3, class 1
    offsets[0][0, 3] = torch.tensor([1.0, 2.0])  # -> [2, 5]
    logits[1][0, 5, 0] = 1.0  # level 1, t = 10, class 0
    offsets[1][0, 5] = torch.tensor([1.5, 0.5])  # stride 2 -> [7, 11]
    logits[1][0, 6, 0] = 3.0  # zero-length segment: dropped by duration_thresh
    masks[1][0, 7] = False
    logits[1][0, 7, 1] = 5.0  # masked step: never decoded
    (det,) = model.decode(pts, masks, logits, offsets)
    torch.testing.assert_close(det["segments"], torch.tensor([[2.0, 5.0], [7.0, 11.0]]))
    torch.testing.assert_close(det["scores"], torch.sigmoid(torch.tensor([2.0, 1.0])))
    assert det["labels"].tolist() == [1, 0]

    model.test_cfg.pre_nms_topk = 1  # per level
    (det,) = model.decode(pts, masks, logits, offsets)
    assert det["labels"].tolist() == [1]  # level 1 keeps only its best (zero-length) candidate, then drops it


def test_grid_to_seconds_by_hand() -> None:
    model = two_level_model()
    model.test_cfg.nms_method = "none"
    dets = [{"segments": torch.tensor([[10.0, 20.0], [-5.0, 1.0]]), "scores": torch.tensor([0.9, 0.8]),
             "labels": torch.tensor([1, 0])}]  # fmt: skip
    batch = {"fps": [30.0], "feat_stride": [4], "num_frames": [16], "duration": [2.0]}
    (out,) = model.postprocess(dets, batch)
    # (g * 4 + 0.5 * 16) / 30: 10 -> 1.6, 20 -> 2.933 clipped to 2.0; -5 -> -0.4 clipped to 0, 1 -> 0.4
    torch.testing.assert_close(out.segments, torch.tensor([[1.6, 2.0], [0.0, 0.4]], dtype=torch.float64))
    assert out.labels.tolist() == [1, 0]
    torch.testing.assert_close(out.scores, torch.tensor([0.9, 0.8], dtype=torch.float64))


def test_vectorised_postprocessing_equals_the_loop_oracle() -> None:
    pytest.importorskip("tal.cuda_ops")
    model = ActionFormer(tiny_config(test_cfg={"max_seg_num": 30, "min_score": 0.001})).eval()
    feats = torch.randn(16, 64)
    meta = {"fps": 30.0, "feat_stride": 4.0, "num_frames": 16.0, "duration": 8.0}
    with torch.no_grad():
        outputs = model.forward_features(*model.preprocess([feats]))
        (fast,) = model.postprocess(model.decode(*outputs), {k: [v] for k, v in meta.items()})
    segs, scores, labels = loop_postprocess(outputs, model.test_cfg, *meta.values())
    assert len(fast) == len(scores) == 30
    assert torch.equal(fast.labels, labels)
    torch.testing.assert_close(fast.segments, segs)
    torch.testing.assert_close(fast.scores, scores)
