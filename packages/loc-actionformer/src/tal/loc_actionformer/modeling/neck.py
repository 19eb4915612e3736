"""Identity feature pyramid: per-level LayerNorm over the backbone levels from ``start_level``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tal.loc_actionformer.modeling.blocks import LayerNorm


class FPNIdentity(nn.Module):
    """Pass pyramid levels ``start_level .. end_level - 1`` through, each with its own LayerNorm (``fpn_norms``)."""

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channel: int,
        scale_factor: float = 2.0,
        start_level: int = 0,
        end_level: int = -1,
        with_ln: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_channel = out_channel
        self.scale_factor = scale_factor
        self.start_level = start_level
        self.end_level = len(self.in_channels) if end_level == -1 else end_level
        if not 0 <= start_level < self.end_level <= len(self.in_channels):
            raise ValueError(f"invalid pyramid levels {start_level}..{self.end_level} of {len(self.in_channels)}")
        self.fpn_norms = nn.ModuleList()
        for i in range(start_level, self.end_level):
            if self.in_channels[i] != out_channel:
                raise ValueError(f"identity neck needs in_channels == out_channel, got {self.in_channels[i]}")
            self.fpn_norms.append(LayerNorm(out_channel) if with_ln else nn.Identity())

    def forward(
        self, inputs: Sequence[torch.Tensor], fpn_masks: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Levels ``[(B, C, T_l)]`` and masks ``[(B, 1, T_l)]`` → the selected levels, normalized."""
        if len(inputs) != len(self.in_channels) or len(fpn_masks) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} pyramid levels, got {len(inputs)}")
        lv = range(self.start_level, self.end_level)
        return [n(inputs[i]) for n, i in zip(self.fpn_norms, lv, strict=True)], [fpn_masks[i] for i in lv]
