"""Classification and regression heads shared across pyramid levels."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tal.core.formats import AnnotationSet
from tal.loc_actionformer.modeling.blocks import LayerNorm, MaskedConv1D, Scale


def empty_label_ids(annotations: AnnotationSet, num_classes: int) -> list[int]:
    """Class ids in ``[0, num_classes)`` that no annotation uses: the classes without training data whose
    classifier bias :class:`ClsHead` starts near zero probability (the release's ``empty_label_ids``)."""
    used = set(annotations.classes)
    return [i for i in range(num_classes) if i not in used]


def _conv_stack(
    input_dim: int, feat_dim: int, num_layers: int, kernel_size: int, with_ln: bool
) -> tuple[nn.ModuleList, nn.ModuleList]:
    head, norm = nn.ModuleList(), nn.ModuleList()
    for idx in range(num_layers - 1):
        c_in = input_dim if idx == 0 else feat_dim
        head.append(MaskedConv1D(c_in, feat_dim, kernel_size, padding=kernel_size // 2, bias=not with_ln))
        norm.append(LayerNorm(feat_dim) if with_ln else nn.Identity())
    return head, norm


class ClsHead(nn.Module):
    """``num_layers - 1`` masked convs (+LN, ReLU) then a classifier conv, applied to every level.

    The classifier bias starts at ``-log((1 - p) / p)`` with ``p = prior_prob``; classes listed in
    ``empty_cls`` (no training data) get ``p = 1e-6`` so they are never predicted.
    """

    def __init__(
        self,
        input_dim: int,
        feat_dim: int,
        num_classes: int,
        prior_prob: float = 0.01,
        num_layers: int = 3,
        kernel_size: int = 3,
        with_ln: bool = False,
        empty_cls: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.act = nn.ReLU()
        self.head, self.norm = _conv_stack(input_dim, feat_dim, num_layers, kernel_size, with_ln)
        self.cls_head = MaskedConv1D(feat_dim, num_classes, kernel_size, padding=kernel_size // 2)
        bias = self.cls_head.conv.bias
        assert bias is not None
        with torch.no_grad():
            if prior_prob > 0:
                bias.fill_(-math.log((1 - prior_prob) / prior_prob))
            for idx in empty_cls:
                bias[idx] = -math.log((1 - 1e-6) / 1e-6)

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Levels ``[(B, C, T_l)]``, masks ``[(B, 1, T_l)]`` → logits ``[(B, num_classes, T_l)]``."""
        out = []
        for x, m in zip(feats, masks, strict=True):
            for conv, norm in zip(self.head, self.norm, strict=True):
                x = self.act(norm(conv(x, m)[0]))
            out.append(self.cls_head(x, m)[0])
        return out


class RegHead(nn.Module):
    """Like :class:`ClsHead` but predicts 2 offsets (left, right), scaled per level and passed through ReLU."""

    def __init__(
        self,
        input_dim: int,
        feat_dim: int,
        fpn_levels: int,
        num_layers: int = 3,
        kernel_size: int = 3,
        with_ln: bool = False,
    ) -> None:
        super().__init__()
        self.fpn_levels = fpn_levels
        self.act = nn.ReLU()
        self.head, self.norm = _conv_stack(input_dim, feat_dim, num_layers, kernel_size, with_ln)
        self.scale = nn.ModuleList([Scale() for _ in range(fpn_levels)])
        self.offset_head = MaskedConv1D(feat_dim, 2, kernel_size, padding=kernel_size // 2)

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Levels ``[(B, C, T_l)]``, masks ``[(B, 1, T_l)]`` → non-negative offsets ``[(B, 2, T_l)]`` (in strides)."""
        if len(feats) != self.fpn_levels:
            raise ValueError(f"expected {self.fpn_levels} pyramid levels, got {len(feats)}")
        out = []
        for lvl, (x, m) in enumerate(zip(feats, masks, strict=True)):
            for conv, norm in zip(self.head, self.norm, strict=True):
                x = self.act(norm(conv(x, m)[0]))
            out.append(F.relu(self.scale[lvl](self.offset_head(x, m)[0])))
        return out
