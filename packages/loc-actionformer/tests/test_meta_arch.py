"""End-to-end behaviour: training losses, inference, padding, precision, configs, records."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config
from pydantic import ValidationError

from tal.core.errors import ConfigError
from tal.core.types import Segments, VideoRecord
from tal.loc_actionformer import (
    ActionFormer,
    ActionFormerConfig,
    batch_from_records,
    build_model,
    sigmoid_focal_loss,
)


def train_batch() -> dict:
    return {
        "video_ids": ["a", "b"],
        "features": [torch.randn(16, 64), torch.randn(16, 50)],
        "segments": [torch.tensor([[3.0, 12.0], [30.0, 55.0]]), torch.tensor([[10.0, 13.0]])],
        "labels": [torch.tensor([0, 2]), torch.tensor([1])],
    }


def eval_batch() -> dict:
    return {
        "video_ids": ["a", "b"],
        "features": [torch.randn(16, 64), torch.randn(16, 40)],
        "fps": [30.0, 25.0],
        "feat_stride": [4, 4],
        "num_frames": [16, 16],
        "duration": [9.0, 6.0],
    }


class RecordingNMS:
    """Stands in for tal.cuda_ops.batched_nms: records its arguments and keeps the top ``max_seg_num``."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, segments, scores, labels, **kwargs):
        self.calls.append(dict(kwargs, n=len(scores)))
        order = torch.argsort(scores, descending=True)[: kwargs["max_seg_num"]]
        return segments[order], scores[order], labels[order]


def test_train_forward_backward() -> None:
    model = ActionFormer(tiny_config(train_cfg={"init_loss_norm": 100, "dropout": 0.1})).train()
    losses = model(train_batch())
    assert set(losses) == {"cls_loss", "reg_loss", "loss"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["reg_loss"] > 0
    torch.testing.assert_close(losses["loss"], losses["cls_loss"] + losses["reg_loss"])
    losses["loss"].backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["cls_head.cls_head.conv.bias"].abs().sum() > 0
    assert grads["reg_head.offset_head.conv.weight"].abs().sum() > 0


def test_loss_normalizer_is_an_ema_of_positives() -> None:
    model = ActionFormer(tiny_config(train_cfg={"init_loss_norm": 100})).train()
    batch = train_batch()
    inputs, masks = model.preprocess(batch["features"])
    points, fpn_masks, cls_logits, offsets = model.forward_features(inputs, masks)
    gt_cls, gt_off = model.label_points(points, batch["segments"], batch["labels"])
    num_pos = int(((torch.stack(gt_cls).sum(-1) > 0) & torch.cat(fpn_masks, 1)).sum())
    assert num_pos > 0
    losses = model.losses(fpn_masks, cls_logits, offsets, gt_cls, gt_off)
    assert model.loss_normalizer == pytest.approx(0.9 * 100 + 0.1 * num_pos)
    model.losses(fpn_masks, cls_logits, offsets, gt_cls, gt_off)
    assert model.loss_normalizer == pytest.approx(0.9 * (0.9 * 100 + 0.1 * num_pos) + 0.1 * num_pos)
    assert torch.isfinite(losses["loss"])


def test_label_smoothing_and_auto_loss_weight() -> None:
    model = ActionFormer(tiny_config(train_cfg={"label_smoothing": 0.1, "loss_weight": -1})).train()
    batch = train_batch()
    inputs, masks = model.preprocess(batch["features"])
    points, fpn_masks, cls_logits, offsets = model.forward_features(inputs, masks)
    gt_cls, gt_off = model.label_points(points, batch["segments"], batch["labels"])
    losses = model.losses(fpn_masks, cls_logits, offsets, gt_cls, gt_off)
    valid = torch.cat(fpn_masks, 1)
    target = torch.stack(gt_cls)[valid] * 0.9 + 0.1 / 4  # 3 classes + 1
    expected_cls = sigmoid_focal_loss(torch.cat(cls_logits, 1)[valid], target, reduction="sum") / model.loss_normalizer
    torch.testing.assert_close(losses["cls_loss"], expected_cls)
    weight = losses["cls_loss"].detach() / max(losses["reg_loss"].item(), 0.01)
    torch.testing.assert_close(losses["loss"], losses["cls_loss"] + losses["reg_loss"] * weight)


def test_training_without_positives_and_with_targets_key() -> None:
    model = ActionFormer(tiny_config()).train()
    batch = {
        "features": [torch.randn(16, 64)],
        "targets": [Segments(torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64))],
    }
    losses = model(batch)
    assert losses["reg_loss"].item() == 0.0 and torch.isfinite(losses["loss"])
    losses["loss"].backward()


def test_training_rejects_overlong_inputs() -> None:
    model = ActionFormer(tiny_config()).train()
    with pytest.raises(ValueError, match="max_seq_len"):
        model.preprocess([torch.randn(16, 65)])


def test_eval_returns_detections_in_seconds() -> None:
    nms = RecordingNMS()
    model = ActionFormer(tiny_config(test_cfg={"max_seg_num": 7}), nms_fn=nms).eval()
    batch = eval_batch()
    with torch.no_grad():
        preds = model(batch)
        inputs, masks = model.preprocess(batch["features"])
        dets = model.decode(*model.forward_features(inputs, masks))
    assert len(preds) == 2 and all(isinstance(p, Segments) for p in preds)
    assert [c["n"] for c in nms.calls] == [len(d["scores"]) for d in dets]
    assert nms.calls[0] == {
        "iou_threshold": 0.1,
        "min_score": 0.01,
        "max_seg_num": 7,
        "use_soft_nms": True,
        "multiclass": True,
        "sigma": 0.5,
        "voting_thresh": 0.75,
        "n": nms.calls[0]["n"],
    }
    for i, (p, d) in enumerate(zip(preds, dets, strict=True)):
        assert len(p) == 7 and p.scores is not None
        assert torch.all(p.scores[:-1] >= p.scores[1:])
        fps, duration = batch["fps"][i], batch["duration"][i]
        order = torch.argsort(d["scores"], descending=True)[:7]
        expected = ((d["segments"][order].double() * 4 + 8) / fps).clamp(0, duration)
        torch.testing.assert_close(p.segments, expected)
        assert p.segments.min() >= 0 and p.segments.max() <= duration


def test_eval_padding_rules() -> None:
    model = ActionFormer(tiny_config(n_mha_win_size=[5, 5, 3])).eval()  # strides 1, 2, 4 x windows 4, 4, 2
    assert model.max_div_factor == 8
    inputs, masks = model.preprocess([torch.randn(16, 30)])
    assert inputs.shape == (1, 16, 64) and masks.sum() == 30  # short inputs: padded to max_seq_len
    inputs, masks = model.preprocess([torch.randn(16, 70)])
    assert inputs.shape == (1, 16, 72) and masks.shape == (1, 1, 72)  # long inputs: next multiple of 8
    model.test_cfg.nms_method = "none"
    batch = {"features": [torch.randn(16, 70)], "fps": [30], "feat_stride": [4], "num_frames": [16], "duration": [10]}
    with torch.no_grad():
        (pred,) = model(batch)
    assert len(pred) > 0


def test_default_nms_is_tal_cuda_ops_or_a_clear_error() -> None:
    model = ActionFormer(tiny_config(test_cfg={"max_seg_num": 5})).eval()
    try:
        import tal.cuda_ops  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match=r"tal\.cuda_ops\.batched_nms"), torch.no_grad():
            model(eval_batch())
        return
    for method in ("soft", "hard"):
        model.test_cfg.nms_method = method
        with torch.no_grad():
            preds = model(eval_batch())
        for p, duration in zip(preds, eval_batch()["duration"], strict=True):
            assert 0 < len(p) <= 5 and p.scores is not None
            assert torch.all(p.scores[:-1] >= p.scores[1:])
            assert p.segments.min() >= 0 and p.segments.max() <= duration


def test_bf16_autocast_close_to_fp32() -> None:
    model = ActionFormer(tiny_config()).eval()
    batch = eval_batch()
    inputs, masks = model.preprocess(batch["features"])
    with torch.no_grad():
        _, _, cls32, off32 = model.forward_features(inputs, masks)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, _, cls16, off16 = model.forward_features(inputs, masks)
    for a, b in zip(cls32 + off32, cls16 + off16, strict=True):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b.float(), a, atol=0.1, rtol=0.05)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(train_batch())
    assert torch.isfinite(losses["loss"]) and losses["loss"].dtype == torch.float32
    losses["loss"].backward()


def test_abs_pe_and_rel_pe_and_empty_classes() -> None:
    cfg = tiny_config(use_abs_pe=True, use_rel_pe=True, train_cfg={"head_empty_cls": [1]})
    model = ActionFormer(cfg)
    assert "backbone.pos_embd" not in model.state_dict()  # non-persistent, as in the release
    assert model.state_dict()["backbone.stem.0.attn.rel_pe"].shape == (1, 1, 4, 5)
    bias = model.cls_head.cls_head.conv.bias
    assert bias[0].item() == pytest.approx(-math.log(99))  # prior probability 0.01
    assert bias[1].item() == pytest.approx(-math.log((1 - 1e-6) / 1e-6))
    model.train()
    model(train_batch())["loss"].backward()
    model.eval()
    model.test_cfg.nms_method = "none"
    long = {"features": [torch.randn(16, 80)], "fps": [30], "feat_stride": [4], "num_frames": [16], "duration": [30]}
    with torch.no_grad():
        model(long)  # inference past max_len interpolates the position embedding


def test_multi_stream_input_projection() -> None:
    model = ActionFormer(tiny_config(input_dim=[10, 6], embd_dim=[16, 16]))
    assert model.state_dict()["backbone.proj.0.conv.weight"].shape == (16, 10, 1)
    model.train()
    assert torch.isfinite(model(train_batch())["loss"])


def test_batch_from_records() -> None:
    feats = torch.randn(16, 48)
    rec = VideoRecord(
        "v1",
        features=feats,
        fps=30.0,
        feat_stride=4,
        num_frames=16,
        duration=6.4,
        segments=Segments(torch.tensor([[1.6, 2.4]]), torch.tensor([2])),
    )
    batch = batch_from_records([rec])
    # seconds -> grid: (t * fps - 0.5 * num_frames) / stride: 1.6 -> 10, 2.4 -> 16
    torch.testing.assert_close(batch["segments"][0], torch.tensor([[10.0, 16.0]]))
    assert batch["labels"][0].tolist() == [2] and batch["video_ids"] == ["v1"]
    model = build_model(tiny_config()).train()
    assert torch.isfinite(model(batch)["loss"])


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ValidationError, match="divisible"):
        tiny_config(max_seq_len=60)
    with pytest.raises(ValidationError, match="regression_range"):
        tiny_config(regression_range=[(0, 4)])
    with pytest.raises(ValidationError, match="fpn_type"):
        tiny_config(fpn_type="fpn")
    assert ActionFormerConfig().name == "actionformer"


def test_padded_tensor_input_equals_list_input() -> None:
    model = ActionFormer(tiny_config(test_cfg={"nms_method": "none"})).eval()
    feats = [torch.randn(16, 64), torch.randn(16, 40)]
    padded = torch.zeros(2, 16, 64)
    padded[0], padded[1, :, :40] = feats[0], feats[1]
    meta = {"fps": 30.0, "feat_stride": 4, "num_frames": 16, "duration": [9.0, 6.0]}  # scalars apply to all
    with torch.no_grad():
        a = model({"features": feats, **meta})
        b = model({"features": padded, "lengths": torch.tensor([64, 40]), **meta})
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.segments, y.segments)
        torch.testing.assert_close(x.scores, y.scores)
    with pytest.raises(ValueError, match="duration"):
        model({"features": feats, "fps": 30.0, "feat_stride": 4, "num_frames": 16})


def test_absolute_position_embedding_takes_one_video_per_batch() -> None:
    model = ActionFormer(tiny_config(use_abs_pe=True, test_cfg={"nms_method": "none"})).eval()
    batch = eval_batch()
    with torch.no_grad():
        with pytest.raises(ConfigError, match=r"use_abs_pe: inference takes one video per batch, got 2"):
            model(batch)
        one = {k: v[:1] for k, v in batch.items()}
        assert len(model(one)) == 1
