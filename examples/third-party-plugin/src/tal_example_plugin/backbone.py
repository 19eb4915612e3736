"""A dilated temporal convolution backbone (MS-TCN single stage style, without the classifier)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from tal.core import ComponentConfig


class DilatedTCNConfig(ComponentConfig):
    name: Literal["example-tcn"] = "example-tcn"
    input_dim: int = 64
    hidden_dim: int = 32
    num_layers: int = 4
    dropout: float = 0.0


class DilatedResidualLayer(nn.Module):
    """``x + conv1x1(relu(dilated_conv3(x)))``, zeroed outside the mask."""

    def __init__(self, channels: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.proj = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x (B, C, T)``, ``mask (B, 1, T)`` bool."""
        return (x + self.drop(self.proj(torch.relu(self.conv(x))))) * mask


class DilatedTCN(nn.Module):
    """``(B, input_dim, T)`` → ``(B, hidden_dim, T)``; dilations 1, 2, 4, ..."""

    def __init__(self, cfg: DilatedTCNConfig) -> None:
        super().__init__()
        self.out_channels = cfg.hidden_dim
        self.inp = nn.Conv1d(cfg.input_dim, cfg.hidden_dim, 1)
        self.layers = nn.ModuleList(
            DilatedResidualLayer(cfg.hidden_dim, 2**i, cfg.dropout) for i in range(cfg.num_layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(x.dtype)
        h = self.inp(x * m) * m
        for layer in self.layers:
            h = layer(h, m)
        return h
