"""``synthetic-segmentation``: small deterministic segmentation data for tests and demos.

Each video looks like a Breakfast recording: background (class 0) at both ends, a few actions in
between, taken in a fixed dataset-wide order (a "recipe": every video follows the same order and
skips some steps), sometimes separated by short background pieces. Segment lengths are log-normal
around a class-specific mean, so some classes are long and others short. Features of a frame are
its class's mean vector, plus a class-specific drift along the segment (the action "progresses"),
plus Gaussian noise: ``x_t = separation * (m_k + (p_t - 0.5) * d_k) + noise * ε_t`` with
``p_t ∈ [0, 1]`` the position inside the segment and ``m_k``, ``d_k`` of norm ≈ 1.

Video ``i`` depends only on ``(seed, i)`` and the dataset-level draw of ``seed``, so items are
identical whatever the access order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from tal.core.config import ComponentConfig
from tal.core.datasets._collate import collate_segmentation
from tal.core.types import Segments, VideoRecord


class SyntheticSegmentationConfig(ComponentConfig):
    """Config of :class:`SyntheticSegmentation`."""

    name: Literal["synthetic-segmentation"] = "synthetic-segmentation"
    seed: int = 0
    num_videos: int = Field(8, ge=1)
    num_classes: int = Field(6, ge=2, description="including the background class 0")
    input_dim: int = Field(16, ge=1)
    min_length: int = Field(64, ge=4)
    max_length: int = Field(160, ge=4)
    max_actions: int = Field(4, ge=1, description="action segments per video at most")
    separation: float = Field(2.0, ge=0, description="scale of the class means")
    noise: float = Field(1.0, ge=0, description="std of the per-frame Gaussian noise")
    fps: float = Field(15.0, gt=0)

    @model_validator(mode="after")
    def _lengths(self) -> SyntheticSegmentationConfig:
        if self.max_length < self.min_length:
            raise ValueError(f"max_length ({self.max_length}) < min_length ({self.min_length})")
        return self


class SyntheticSegmentation:
    """Map-style dataset of :class:`VideoRecord` with ``features (C, T)``, ``frame_labels (T,)`` and
    the non-background ``segments`` in seconds."""

    def __init__(self, config: SyntheticSegmentationConfig) -> None:
        self.config = config
        k, c = config.num_classes, config.input_dim
        rng = np.random.default_rng([config.seed, 0])
        self.class_names = ["background"] + [f"action_{i}" for i in range(1, k)]
        self.num_classes = k
        self.means = rng.normal(size=(k, c)) / np.sqrt(c)
        self.drifts = rng.normal(size=(k, c)) / np.sqrt(c)
        self.mean_lengths = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=k))
        self.order = rng.permutation(np.arange(1, k))

    def __len__(self) -> int:
        return self.config.num_videos

    @property
    def video_ids(self) -> list[str]:
        return [f"synthetic_{i:04d}" for i in range(len(self))]

    def _labels(self, rng: np.random.Generator, length: int) -> np.ndarray:
        cfg = self.config
        n_actions = int(rng.integers(1, min(cfg.max_actions, cfg.num_classes - 1, (length - 1) // 2) + 1))
        steps = np.sort(rng.choice(len(self.order), size=n_actions, replace=False))
        classes = [0]
        for j, step in enumerate(steps):
            if j > 0 and rng.random() < 0.3:
                classes.append(0)
            classes.append(int(self.order[step]))
        classes.append(0)
        scale = np.where(np.array(classes) == 0, 0.5, 1.0)
        raw = self.mean_lengths[classes] * scale * rng.lognormal(0.0, 0.35, size=len(classes))
        # every segment gets one frame, the rest is shared in proportion (largest remainders first)
        share = raw / raw.sum() * (length - len(classes))
        lengths = 1 + np.floor(share).astype(np.int64)
        rest = length - int(lengths.sum())
        lengths[np.argsort(-(share - np.floor(share)), kind="stable")[:rest]] += 1
        return np.repeat(np.array(classes, dtype=np.int64), lengths)

    def __getitem__(self, index: int) -> VideoRecord:
        cfg = self.config
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} videos")
        index %= len(self)
        rng = np.random.default_rng([cfg.seed, 1, index])
        length = int(rng.integers(cfg.min_length, cfg.max_length + 1))
        labels = self._labels(rng, length)
        change = np.flatnonzero(np.diff(labels)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [length]])
        progress = np.empty(length)
        for s, e in zip(starts, ends, strict=True):
            progress[s:e] = (np.arange(e - s) + 0.5) / (e - s)
        pattern = self.means[labels] + (progress[:, None] - 0.5) * self.drifts[labels]
        feats = cfg.separation * pattern + cfg.noise * rng.normal(size=(length, cfg.input_dim))
        run_labels = labels[starts]
        keep = run_labels != 0
        bounds = np.stack([starts[keep], ends[keep]], axis=1).astype(np.float64) / cfg.fps
        segments = Segments(torch.from_numpy(bounds), torch.from_numpy(run_labels[keep]))
        return VideoRecord(
            video_id=f"synthetic_{index:04d}",
            features=torch.from_numpy(feats.T.astype(np.float32)).contiguous(),
            fps=cfg.fps,
            feat_stride=1.0,
            num_frames=1.0,
            duration=length / cfg.fps,
            segments=segments,
            frame_labels=torch.from_numpy(labels),
        )

    def collate(self, items: Sequence[VideoRecord]) -> dict[str, Any]:
        """Same layout as the ``mstcn`` dataset: ``features``, ``mask``, ``labels`` (-100 padded), ``targets``."""
        return collate_segmentation(items)
