"""Values computed by hand: points, label assignment, losses, masked conv, LayerNorm, decoding."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config

from tal.loc_actionformer import ActionFormer, ctr_diou_loss_1d, sigmoid_focal_loss
from tal.loc_actionformer.blocks import LayerNorm, MaskedConv1D
from tal.loc_actionformer.points import PointGenerator

BIG = 10000.0


def two_level_model(**train_cfg) -> ActionFormer:
    """Strides 1 and 2, regression ranges (0, 4) and (4, 10000), 16 steps, 2 classes."""
    cfg = tiny_config(
        num_classes=2,
        max_seq_len=16,
        backbone_arch=(2, 2, 1),
        regression_range=[(0, 4), (4, BIG)],
        n_mha_win_size=3,
        train_cfg=train_cfg,
    )
    return ActionFormer(cfg)


def test_point_generator_two_levels() -> None:
    gen = PointGenerator(8, [1, 2], [(0, 4), (4, BIG)])
    pts = gen([torch.zeros(1, 3, 8), torch.zeros(1, 3, 4)])
    expected0 = torch.tensor([[t, 0.0, 4.0, 1.0] for t in range(8)])
    expected1 = torch.tensor([[0.0, 4.0, BIG, 2.0], [2.0, 4.0, BIG, 2.0], [4.0, 4.0, BIG, 2.0], [6.0, 4.0, BIG, 2.0]])
    torch.testing.assert_close(pts[0], expected0, rtol=0, atol=0)
    torch.testing.assert_close(pts[1], expected1, rtol=0, atol=0)
    # not kept in the state dict (non-persistent), and longer inputs extend the same grid
    assert len(gen.state_dict()) == 0
    longer = gen([torch.zeros(1, 3, 10), torch.zeros(1, 3, 5)])
    torch.testing.assert_close(longer[1][4], torch.tensor([8.0, 4.0, BIG, 2.0]))


def _labels(model: ActionFormer, segments, labels):
    pts = model.point_generator([torch.zeros(1, 1, 16), torch.zeros(1, 1, 8)])
    cls_t, reg_t = model.label_points(pts, [torch.tensor(segments)], [torch.tensor(labels)])
    return cls_t[0], reg_t[0]  # (24, C), (24, 2): rows 0-15 level 0 (t = row), rows 16-23 level 1 (t = 2 (row - 16))


def _positives(cls_t: torch.Tensor, reg_t: torch.Tensor) -> dict[int, tuple[list[float], list[float]]]:
    rows = torch.nonzero(cls_t.sum(-1) > 0).squeeze(1).tolist()
    return {r: (cls_t[r].tolist(), reg_t[r].tolist()) for r in rows}


def test_label_assignment_two_segments() -> None:
    # A = [2, 5] class 0, B = [8, 15] class 1; centre sampling radius 1.5 strides
    # level 0 (stride 1): A's centre 3.5 -> sampling window [2, 5] -> t = 3, 4 (max distance 2, in (0, 4));
    #                     B's centre 11.5 -> window [10, 13] -> t = 11, 12 (max distance 4, in (0, 4))
    # level 1 (stride 2): A -> window [2, 5] -> t = 4, max distance 2 is outside (4, 10000): negative;
    #                     B -> window [8.5, 14.5] -> t = 10, 12, 14 with max distances 5, 4, 6: positive
    cls_t, reg_t = _labels(two_level_model(), [[2.0, 5.0], [8.0, 15.0]], [0, 1])
    expected = {
        3: ([1.0, 0.0], [1.0, 2.0]),
        4: ([1.0, 0.0], [2.0, 1.0]),
        11: ([0.0, 1.0], [3.0, 4.0]),
        12: ([0.0, 1.0], [4.0, 3.0]),
        16 + 5: ([0.0, 1.0], [2 / 2, 5 / 2]),  # t = 10, offsets (2, 5) / stride 2
        16 + 6: ([0.0, 1.0], [4 / 2, 3 / 2]),  # t = 12
        16 + 7: ([0.0, 1.0], [6 / 2, 1 / 2]),  # t = 14
    }
    assert _positives(cls_t, reg_t) == expected


def test_label_assignment_shortest_segment_wins() -> None:
    # C = [9, 14] (class 0, length 5) overlaps B = [8, 15] (class 1, length 7):
    # level 0: t = 11, 12 qualify for both -> C; level 1: t = 10 qualifies for both (C's max distance 4) -> C,
    # t = 12 has max distance 3 to C (outside (4, 10000)) -> B; t = 14 is outside C's window -> B
    cls_t, reg_t = _labels(two_level_model(), [[2.0, 5.0], [8.0, 15.0], [9.0, 14.0]], [0, 1, 0])
    pos = _positives(cls_t, reg_t)
    assert pos[11] == ([1.0, 0.0], [2.0, 3.0])
    assert pos[12] == ([1.0, 0.0], [3.0, 2.0])
    assert pos[16 + 5] == ([1.0, 0.0], [1 / 2, 4 / 2])
    assert pos[16 + 6] == ([0.0, 1.0], [4 / 2, 3 / 2])
    assert pos[16 + 7] == ([0.0, 1.0], [6 / 2, 1 / 2])


def test_label_assignment_equal_lengths_give_both_classes() -> None:
    cls_t, _ = _labels(two_level_model(), [[2.0, 5.0], [2.0, 5.0]], [0, 1])
    assert _positives(cls_t, torch.zeros(24, 2)).keys() == {3, 4}
    assert cls_t[3].tolist() == [1.0, 1.0]


def test_label_assignment_without_centre_sampling() -> None:
    # "none": any point strictly inside the segment; [8, 15] on level 0 -> t = 9..14, range (0, 4) keeps
    # t with max(t - 8, 15 - t) <= 4 -> t = 11, 12
    cls_t, reg_t = _labels(two_level_model(center_sample="none"), [[8.0, 15.0]], [1])
    pos = _positives(cls_t, reg_t)
    level0 = sorted(r for r in pos if r < 16)
    assert level0 == [11, 12]
    # level 1: t = 10, 12, 14 have max distance 5, 4, 6 -> all three
    assert sorted(r - 16 for r in pos if r >= 16) == [5, 6, 7]


def test_label_assignment_no_segments() -> None:
    cls_t, reg_t = _labels(two_level_model(), torch.zeros(0, 2).tolist(), [])
    assert cls_t.shape == (24, 2) and cls_t.sum() == 0 and reg_t.abs().sum() == 0


def test_sigmoid_focal_loss_by_hand() -> None:
    logits = torch.tensor([0.0, 2.0, -1.0])
    targets = torch.tensor([1.0, 0.0, 0.3])

    def by_hand(x: float, y: float, alpha: float = 0.25, gamma: float = 2.0) -> float:
        p = 1 / (1 + math.exp(-x))
        ce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
        p_t = p * y + (1 - p) * (1 - y)
        return (alpha * y + (1 - alpha) * (1 - y)) * ce * (1 - p_t) ** gamma

    expected = [by_hand(0.0, 1.0), by_hand(2.0, 0.0), by_hand(-1.0, 0.3)]
    # first two written out: 0.25 * 0.25 * ln 2 and 0.75 * sigmoid(2)^2 * ln(1 + e^2)
    assert expected[0] == pytest.approx(0.0625 * math.log(2))
    assert expected[1] == pytest.approx(0.75 * (1 / (1 + math.exp(-2))) ** 2 * math.log(1 + math.exp(2)))
    got = sigmoid_focal_loss(logits, targets)
    torch.testing.assert_close(got, torch.tensor(expected), rtol=1e-6, atol=1e-7)
    assert sigmoid_focal_loss(logits, targets, reduction="sum").item() == pytest.approx(sum(expected), rel=1e-6)
    assert sigmoid_focal_loss(logits, targets, reduction="mean").item() == pytest.approx(sum(expected) / 3, rel=1e-6)


def test_diou_loss_by_hand() -> None:
    pred = torch.tensor([[1.0, 3.0], [1.0, 1.0], [0.5, 0.5]])
    target = torch.tensor([[2.0, 2.0], [1.0, 1.0], [2.0, 0.0]])
    # 1) intersection 1 + 2 = 3, union 4 + 4 - 3 = 5, IoU 0.6, enclosing 2 + 3 = 5, centre distance 1 -> 0.44
    # 2) identical -> 0
    # 3) intersection 0.5, union 2.5, IoU 0.2, enclosing 2.5, centre distance 1 -> 1 - 0.2 + 0.16 = 0.96
    expected = torch.tensor([0.44, 0.0, 0.96])
    torch.testing.assert_close(ctr_diou_loss_1d(pred, target), expected)
    assert ctr_diou_loss_1d(pred, target, reduction="sum").item() == pytest.approx(1.40, rel=1e-6)
    assert ctr_diou_loss_1d(pred[:0], target[:0], reduction="mean").item() == 0.0


def test_masked_conv_by_hand() -> None:
    conv = MaskedConv1D(1, 1, 3, padding=1)
    assert conv.conv.bias.item() == 0.0  # bias starts at zero
    with torch.no_grad():
        conv.conv.weight.copy_(torch.tensor([[[1.0, 2.0, 3.0]]]))
        conv.conv.bias.fill_(0.5)
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    out, mask = conv(x, torch.tensor([[[True, True, True, False]]]))
    # out[i] = x[i-1] + 2 x[i] + 3 x[i+1] + 0.5 with zero padding; the last step is masked
    assert out.tolist() == [[[8.5, 14.5, 20.5, 0.0]]]
    assert mask.tolist() == [[[True, True, True, False]]]

    strided = MaskedConv1D(1, 1, 3, stride=2, padding=1)
    with torch.no_grad():
        strided.conv.weight.copy_(torch.tensor([[[1.0, 2.0, 3.0]]]))
        strided.conv.bias.fill_(0.5)
    out, mask = strided(x, torch.tensor([[[True, True, False, False]]]))
    assert out.tolist() == [[[8.5, 0.0]]]  # steps 0 and 2; the mask is subsampled to [True, False]
    assert mask.tolist() == [[[True, False]]]
    with pytest.raises(ValueError):
        strided(x[..., :3], torch.ones(1, 1, 3, dtype=torch.bool))


def test_layer_norm_over_channels_by_hand() -> None:
    ln = LayerNorm(2, eps=0.0)
    out = ln(torch.tensor([[[1.0, 0.0], [3.0, 4.0]]]))  # (B=1, C=2, T=2)
    torch.testing.assert_close(out, torch.tensor([[[-1.0, -1.0], [1.0, 1.0]]]))


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
