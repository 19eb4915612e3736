"""Point generator: the anchor-free "points" of every pyramid level with their regression ranges."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class PointGenerator(nn.Module):
    """Points ``(T_l, 4)`` per level: ``[t, reg_min, reg_max, stride]`` with ``t = 0, s, 2s, ...`` in input steps.

    Points up to ``max_seq_len`` are computed once and kept as non-persistent buffers (``buffer_points.<l>``,
    not part of the state dict); longer inputs are computed on the fly with the same values.
    """

    def __init__(
        self,
        max_seq_len: float,
        fpn_strides: Sequence[int],
        regression_range: Sequence[Sequence[float]],
        use_offset: bool = False,
    ) -> None:
        super().__init__()
        if len(regression_range) != len(fpn_strides):
            raise ValueError(f"{len(fpn_strides)} pyramid levels but {len(regression_range)} regression ranges")
        self.max_seq_len = max_seq_len
        self.fpn_levels = len(fpn_strides)
        self.fpn_strides = [int(s) for s in fpn_strides]
        self.regression_range = [(float(lo), float(hi)) for lo, hi in regression_range]
        self.use_offset = use_offset
        self.buffer_points = nn.Module()
        for lvl in range(self.fpn_levels):
            n = math.ceil(max_seq_len / self.fpn_strides[lvl])
            self.buffer_points.register_buffer(str(lvl), self.points_for_level(lvl, n), persistent=False)

    def points_for_level(self, level: int, length: int, device: torch.device | None = None) -> torch.Tensor:
        """``(length, 4)`` float points of pyramid ``level``."""
        s = self.fpn_strides[level]
        lo, hi = self.regression_range[level]
        t = torch.arange(length, device=device, dtype=torch.float32) * s
        if self.use_offset:
            t = t + 0.5 * s
        pts = torch.empty(length, 4, device=device)
        pts[:, 0] = t
        pts[:, 1] = lo
        pts[:, 2] = hi
        pts[:, 3] = s
        return pts

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Level features ``[(B, C, T_l)]`` → points ``[(T_l, 4)]``."""
        if len(feats) != self.fpn_levels:
            raise ValueError(f"expected {self.fpn_levels} pyramid levels, got {len(feats)}")
        out = []
        for lvl, f in enumerate(feats):
            t = f.shape[-1]
            buf = getattr(self.buffer_points, str(lvl))
            out.append(buf[:t] if t <= buf.shape[0] else self.points_for_level(lvl, t, buf.device))
        return out
