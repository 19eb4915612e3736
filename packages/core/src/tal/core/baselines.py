"""Baseline models registered by tal-core itself, so ``tal train`` works with core alone.

``frame-mlp``: a per-frame MLP classifier for action segmentation. Batches hold
``"features"`` ``(B, C, T)`` float, ``"mask"`` ``(B, 1, T)`` bool (true on valid steps),
``"labels"`` ``(B, T)`` int64 padded with ``-100`` (or ``"targets"``: a list of ``(T_i,)`` int64)
and ``"video_ids"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from tal.core.config import ComponentConfig
from tal.core.registry import Registry

IGNORE_INDEX = -100


class FrameMLPConfig(ComponentConfig):
    """Config of :class:`FrameMLP`."""

    name: Literal["frame-mlp"] = "frame-mlp"
    input_dim: int = Field(ge=1, description="feature channels C")
    num_classes: int = Field(ge=1, description="number of frame classes K")
    hidden_dim: int = Field(256, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


def _labels_from_targets(targets: list[torch.Tensor], length: int, device: torch.device) -> torch.Tensor:
    labels = torch.full((len(targets), length), IGNORE_INDEX, dtype=torch.int64, device=device)
    for i, t in enumerate(targets):
        t = torch.as_tensor(t, dtype=torch.int64, device=device)[:length]
        labels[i, : t.shape[0]] = t
    return labels


class FrameMLP(nn.Module):
    """Two 1x1 convolutions (``C → hidden → K``) with ReLU and dropout, applied to every time step.

    Training: ``{"loss": masked cross-entropy}`` averaged over valid labelled frames.
    Eval: one ``(T_i,)`` int64 tensor of argmax labels per video (its valid steps only).
    """

    def __init__(self, input_dim: int, num_classes: int, hidden_dim: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.num_classes = num_classes
        self.net = nn.Sequential(
            nn.Conv1d(input_dim, hidden_dim, 1),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv1d(hidden_dim, num_classes, 1),
        )

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` features → ``(B, K, T)`` class logits."""
        if features.ndim != 3 or features.shape[1] != self.input_dim:
            raise ValueError(f"FrameMLP expects features (B, {self.input_dim}, T), got {tuple(features.shape)}")
        return self.net(features)

    def forward(self, batch: Mapping[str, Any]) -> Any:
        features = batch["features"]
        mask = batch.get("mask")
        if mask is None:
            mask = torch.ones(features.shape[0], 1, features.shape[2], dtype=torch.bool, device=features.device)
        mask = mask.bool()
        logits = self.logits(features)
        if self.training:
            labels = batch.get("labels")
            if labels is None:
                labels = _labels_from_targets(batch["targets"], features.shape[2], features.device)
            labels = labels.masked_fill(~mask[:, 0], IGNORE_INDEX)
            if not bool((labels != IGNORE_INDEX).any()):
                return {"loss": logits.float().sum() * 0.0}  # nothing labelled: a zero loss, not NaN
            loss = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX)
            return {"loss": loss}
        return [logits[i][:, mask[i, 0]].argmax(dim=0) for i in range(logits.shape[0])]


def build_frame_mlp(config: FrameMLPConfig) -> FrameMLP:
    """Build :class:`FrameMLP` from its config."""
    return FrameMLP(config.input_dim, config.num_classes, config.hidden_dim, config.dropout)


def register(registry: Registry) -> None:
    """Register core's baseline models."""
    registry.add_model(
        "frame-mlp", build_frame_mlp, config=FrameMLPConfig, description="per-frame MLP segmentation baseline"
    )
