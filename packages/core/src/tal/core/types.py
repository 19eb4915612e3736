"""Core data types shared by every package.

Times are in **seconds** at every public boundary; feature-grid units only live inside models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


def _as_tensor(x: Any, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


@dataclass
class Segments:
    """A set of temporal segments.

    Attributes:
        segments: ``(N, 2)`` float tensor of ``[start, end]`` in seconds.
        labels: ``(N,)`` int64 class indices.
        scores: ``(N,)`` float confidences, or ``None`` for ground truth.
    """

    segments: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.segments = _as_tensor(self.segments, torch.float64).reshape(-1, 2)
        self.labels = _as_tensor(self.labels, torch.int64).reshape(-1)
        if self.scores is not None:
            self.scores = _as_tensor(self.scores, torch.float64).reshape(-1)
        n = self.segments.shape[0]
        if self.labels.shape[0] != n:
            raise ValueError(f"Segments: {n} segments but {self.labels.shape[0]} labels")
        if self.scores is not None and self.scores.shape[0] != n:
            raise ValueError(f"Segments: {n} segments but {self.scores.shape[0]} scores")

    def __len__(self) -> int:
        return int(self.segments.shape[0])

    @classmethod
    def empty(cls, with_scores: bool = False) -> Segments:
        """No segments."""
        return cls(torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64), torch.zeros(0) if with_scores else None)

    def sorted_by_score(self) -> Segments:
        """A copy sorted by descending score (stable for ties)."""
        if self.scores is None:
            return self
        order = torch.argsort(-self.scores, stable=True)
        return Segments(self.segments[order], self.labels[order], self.scores[order])


@dataclass
class VideoRecord:
    """One video as methods see it.

    Attributes:
        video_id: unique id (file stem of the features / key in the annotation file).
        features: ``(C, T)`` float tensor, one column per feature step, or ``None`` if not loaded.
        fps: frames per second of the source video.
        feat_stride: frames between two consecutive feature steps.
        num_frames: frames covered by one feature step (the clip length of the extractor).
        duration: video length in seconds.
        segments: ground-truth segments in seconds (``None`` when unannotated).
        frame_labels: ``(T,)`` int64 per-frame ground truth for segmentation (``None`` otherwise).
        meta: free-form extra fields (subset, label names, ...).
    """

    video_id: str
    features: torch.Tensor | None = None
    fps: float = 30.0
    feat_stride: float = 1.0
    num_frames: float = 1.0
    duration: float = 0.0
    segments: Segments | None = None
    frame_labels: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        """Number of feature steps ``T`` (0 when features are not loaded)."""
        return 0 if self.features is None else int(self.features.shape[-1])

    def seconds_to_grid(self, t: torch.Tensor) -> torch.Tensor:
        """Seconds → feature-grid coordinates (centre of the first clip is step 0)."""
        return (t * self.fps - 0.5 * self.num_frames) / self.feat_stride

    def grid_to_seconds(self, g: torch.Tensor) -> torch.Tensor:
        """Feature-grid coordinates → seconds, clipped to ``[0, duration]``."""
        t = (g * self.feat_stride + 0.5 * self.num_frames) / self.fps
        return t.clamp(min=0.0, max=self.duration) if self.duration > 0 else t.clamp(min=0.0)
