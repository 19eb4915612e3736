"""A synthetic segmentation dataset: each class is a sinusoid of its own frequency plus noise."""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import torch
from pydantic import Field

from tal.core import ComponentConfig, VideoRecord


class SineDatasetConfig(ComponentConfig):
    name: Literal["example-sine"] = "example-sine"
    num_videos: int = Field(8, ge=1)
    num_classes: int = Field(3, ge=2)
    input_dim: int = Field(64, ge=1)
    length: int = Field(120, ge=8)
    noise: float = Field(0.3, ge=0)
    seed: int = 0


class SineDataset:
    """Videos made of 2–5 segments; features of class k oscillate at frequency k+1 over channels."""

    def __init__(self, cfg: SineDatasetConfig) -> None:
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        self.items = [self._make(i, gen) for i in range(cfg.num_videos)]

    def _make(self, index: int, gen: torch.Generator) -> VideoRecord:
        cfg = self.cfg
        n_seg = int(torch.randint(2, 6, (1,), generator=gen))
        cuts = torch.sort(torch.randperm(cfg.length - 1, generator=gen)[: n_seg - 1] + 1).values.tolist()
        bounds = [0, *cuts, cfg.length]
        labels = torch.empty(cfg.length, dtype=torch.int64)
        for s, e in itertools.pairwise(bounds):
            labels[s:e] = int(torch.randint(0, cfg.num_classes, (1,), generator=gen))
        channel = torch.arange(cfg.input_dim, dtype=torch.float32)
        patterns = torch.stack(
            [torch.sin((k + 1) * 2 * math.pi * channel / cfg.input_dim) for k in range(cfg.num_classes)]
        )
        feats = patterns[labels].T + cfg.noise * torch.randn(cfg.input_dim, cfg.length, generator=gen)
        return VideoRecord(f"sine_{index:03d}", feats, fps=10.0, duration=cfg.length / 10.0, frame_labels=labels)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> VideoRecord:
        return self.items[index]

    def collate(self, items: list[VideoRecord]) -> dict[str, Any]:
        """Pad to the longest video: ``features (B, C, T)``, ``mask (B, 1, T)``, ``labels (B, T)`` (-100 pad)."""
        t = max(r.num_steps for r in items)
        feats = torch.zeros(len(items), self.cfg.input_dim, t)
        mask = torch.zeros(len(items), 1, t, dtype=torch.bool)
        labels = torch.full((len(items), t), -100, dtype=torch.int64)
        for i, r in enumerate(items):
            assert r.features is not None and r.frame_labels is not None
            feats[i, :, : r.num_steps] = r.features
            mask[i, :, : r.num_steps] = True
            labels[i, : r.num_steps] = r.frame_labels
        return {
            "video_ids": [r.video_id for r in items],
            "features": feats,
            "mask": mask,
            "labels": labels,
            "targets": [r.frame_labels for r in items],
        }
