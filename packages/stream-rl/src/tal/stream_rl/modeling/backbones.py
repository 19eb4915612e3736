"""Backbones that turn a clip's sampled frames into token features for the head.

Both follow :class:`tal.core.protocols.Backbone` (``backbone(x, mask) -> (B, C_out, N)`` with an
``out_channels`` attribute) and add ``temporal_stride``: how many sampled frames one output token
covers. Any registered backbone with ``(B, C, T) -> (B, C_out, T)`` features works as well (stride 1).

- :class:`FeatureBackbone` passes pre-extracted features (I3D, 2048-d, the usual case) through: the
  release's feature-input configs feed them straight to the head.
- :class:`Conv3dBackbone` is a small end-to-end RGB network: a (2+1)-D convolution stem and stages,
  then spatial mean pooling (the release's ``TaskFusionPoolNeck``). Its default temporal stride 2
  matches the release's Swin3D (temporal patch 2), which is why the release's RGB configs give the head
  ``sample_rate * 2``. A larger RGB network plugs in the same way.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureBackbone(nn.Module):
    """Identity on ``(B, C, T)`` features; padded steps are zeroed."""

    temporal_stride = 1

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.out_channels = input_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x (B, C, T)``, ``mask (B, 1, T)`` bool → ``(B, C, T)``."""
        if x.dim() != 3 or x.shape[1] != self.input_dim:
            raise ValueError(f"stream-features expects features (B, {self.input_dim}, T), got {tuple(x.shape)}")
        return x * mask.to(x.dtype)


class Conv3dUnit(nn.Sequential):
    """Spatial ``(1, 3, 3)`` then temporal ``(3, 1, 1)`` convolution, each with BatchNorm and ReLU."""

    def __init__(self, c_in: int, c_out: int, spatial_stride: int, temporal_stride: int) -> None:
        super().__init__(
            nn.Conv3d(
                c_in, c_out, (1, 3, 3), stride=(1, spatial_stride, spatial_stride), padding=(0, 1, 1), bias=False
            ),
            nn.BatchNorm3d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv3d(c_out, c_out, (3, 1, 1), stride=(temporal_stride, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(c_out),
            nn.ReLU(inplace=True),
        )


class Conv3dBackbone(nn.Module):
    """Small (2+1)-D RGB network: ``(B, 3, T, H, W)`` frames → ``(B, widths[-1], T / temporal_stride)``.

    Every stage halves height and width; the stage ``temporal_stride_stage`` divides time by
    ``temporal_stride``. Tokens are the spatial mean of the last stage (the release's pooling neck).
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        temporal_stride: int = 2,
        temporal_stride_stage: int = 1,
    ) -> None:
        super().__init__()
        if not widths:
            raise ValueError("widths must name at least one stage")
        self.in_channels = in_channels
        self.temporal_stride = temporal_stride
        self.out_channels = widths[-1]
        stages = []
        c_in = in_channels
        for i, width in enumerate(widths):
            stages.append(Conv3dUnit(c_in, width, 2, temporal_stride if i == temporal_stride_stage else 1))
            c_in = width
        self.stages = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x (B, 3, T, H, W)``, ``mask (B, 1, T)`` bool → ``(B, C_out, T / temporal_stride)``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"stream-conv3d expects frames (B, {self.in_channels}, T, H, W), got {tuple(x.shape)}")
        if x.shape[2] % self.temporal_stride:
            raise ValueError(
                f"{x.shape[2]} frames per clip are not divisible by the temporal stride {self.temporal_stride}"
            )
        x = x * mask.to(x.dtype)[..., None, None]
        features = self.stages(x).mean(dim=(-2, -1))
        token_mask = mask[..., :: self.temporal_stride]
        return features * token_mask.to(features.dtype)
