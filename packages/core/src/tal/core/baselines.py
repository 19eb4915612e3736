"""Baseline models registered by tal-core itself, so ``tal train`` works with core alone.

``frame-mlp``: a per-frame MLP classifier for action segmentation.
``frame-classifier``: any registered backbone followed by a per-frame linear classifier.
``temporal-conv``: a small masked temporal convolution backbone (the default of ``frame-classifier``).

Batches hold
``"features"`` ``(B, C, T)`` float, ``"mask"`` ``(B, 1, T)`` bool (true on valid steps),
``"labels"`` ``(B, T)`` int64 padded with ``-100`` (or ``"targets"``: a list of ``(T_i,)`` int64)
and ``"video_ids"``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from tal.core.config import ComponentConfig, component_field
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
        return segmentation_forward(self, batch, lambda features, mask: self.logits(features))


def segmentation_forward(module: nn.Module, batch: Mapping[str, Any], logits_fn: Any) -> Any:
    """Shared train/eval logic of frame classifiers: ``logits_fn(features, mask) -> (B, K, T)``.

    Training: ``{"loss": masked cross-entropy}``; eval: ``(T_i,)`` argmax labels per video.
    """
    features = batch["features"]
    mask = batch.get("mask")
    if mask is None:
        mask = torch.ones(features.shape[0], 1, features.shape[2], dtype=torch.bool, device=features.device)
    mask = mask.bool()
    logits = logits_fn(features, mask)
    if module.training:
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


class TemporalConvConfig(ComponentConfig):
    """Config of :class:`TemporalConv`."""

    name: Literal["temporal-conv"] = "temporal-conv"
    input_dim: int = Field(64, ge=1, description="feature channels C")
    hidden_dim: int = Field(64, ge=1)
    num_layers: int = Field(2, ge=1)
    kernel_size: int = Field(3, ge=1)


class TemporalConv(nn.Module):
    """``num_layers`` masked ``Conv1d + ReLU`` layers: ``(B, C, T)`` → ``(B, hidden_dim, T)``.

    Padded steps are zeroed before every convolution, so they never leak into valid steps.
    """

    def __init__(self, config: TemporalConvConfig) -> None:
        super().__init__()
        if config.kernel_size % 2 == 0:
            raise ValueError(f"temporal-conv: kernel_size must be odd to keep T, got {config.kernel_size}")
        self.out_channels = config.hidden_dim
        dims = [config.input_dim] + [config.hidden_dim] * config.num_layers
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, config.kernel_size, padding=config.kernel_size // 2) for a, b in itertools.pairwise(dims)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(x.dtype)
        for conv in self.convs:
            x = torch.relu(conv(x * m))
        return x * m


class FrameClassifierConfig(ComponentConfig):
    """Config of :class:`FrameClassifier`; ``backbone`` is any registered backbone's config."""

    name: Literal["frame-classifier"] = "frame-classifier"
    num_classes: int = Field(ge=1, description="number of frame classes K")
    backbone: component_field("backbones") = Field(default_factory=TemporalConvConfig)  # type: ignore[valid-type]
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class FrameClassifier(nn.Module):
    """A registered backbone (finest level if it returns several) + dropout + 1x1 conv classifier."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.drop = nn.Dropout(dropout)
        out_channels = getattr(backbone, "out_channels", None)
        if not isinstance(out_channels, int):
            raise ValueError(f"frame-classifier: backbone {type(backbone).__name__} has no integer `out_channels`")
        self.head = nn.Conv1d(out_channels, num_classes, 1)

    def logits(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` + mask ``(B, 1, T)`` → ``(B, K, T)``."""
        out = self.backbone(features, mask)
        if isinstance(out, (list, tuple)):
            out = out[0]
        if out.shape[-1] != features.shape[-1]:
            raise ValueError(
                f"frame-classifier needs a backbone that keeps T; got {out.shape[-1]} for {features.shape[-1]}"
            )
        return self.head(self.drop(out))

    def forward(self, batch: Mapping[str, Any]) -> Any:
        return segmentation_forward(self, batch, self.logits)


def build_frame_classifier(config: FrameClassifierConfig, registry: Registry) -> FrameClassifier:
    """Build the backbone named in the config through the registry, then the classifier."""
    backbone = registry.build("backbones", config.backbone)
    return FrameClassifier(backbone, config.num_classes, config.dropout)


def register(registry: Registry) -> None:
    """Register core's baseline models."""
    registry.add_model(
        "frame-mlp", build_frame_mlp, config=FrameMLPConfig, description="per-frame MLP segmentation baseline"
    )
    registry.add_model(
        "frame-classifier",
        build_frame_classifier,
        config=FrameClassifierConfig,
        description="any registered backbone + per-frame linear classifier",
    )


def register_backbones(registry: Registry) -> None:
    """Register core's baseline backbone."""
    registry.add_backbone("temporal-conv", TemporalConv, config=TemporalConvConfig, description="masked conv stack")
