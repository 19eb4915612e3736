"""Losses and layers against values computed by hand: focal loss, DIoU loss, masked conv, channel LayerNorm."""

from __future__ import annotations

import math

import pytest
import torch

from tal.loc_actionformer import ctr_diou_loss_1d, sigmoid_focal_loss
from tal.loc_actionformer.modeling.blocks import LayerNorm, MaskedConv1D


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
