"""Frame error rate: the share of frames whose predicted class is wrong (lower is better)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from tal.core import ComponentConfig


class FrameErrorConfig(ComponentConfig):
    name: Literal["example-frame-error"] = "example-frame-error"


class FrameErrorRate:
    """Accumulates wrong and total frame counts; merging adds the counts."""

    higher_is_better = False  # the trainer keeps the checkpoint with the lowest error

    def __init__(self, cfg: FrameErrorConfig | None = None) -> None:
        self.reset()

    def reset(self) -> None:
        self.wrong = 0
        self.total = 0

    def update(self, predictions: Sequence[Any], targets: Sequence[Any], video_ids: Sequence[str]) -> None:
        for pred, target, vid in zip(predictions, targets, video_ids, strict=True):
            p, t = torch.as_tensor(pred).reshape(-1), torch.as_tensor(target).reshape(-1)
            if p.shape != t.shape:
                raise ValueError(f"video {vid}: prediction has {p.numel()} frames, ground truth {t.numel()}")
            self.wrong += int((p != t).sum())
            self.total += int(t.numel())

    def merge(self, other: FrameErrorRate) -> None:
        self.wrong += other.wrong
        self.total += other.total

    def compute(self) -> dict[str, float]:
        return {"frame_error": 100.0 * self.wrong / self.total if self.total else float("nan")}
