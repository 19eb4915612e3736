"""A synthetic THUMOS-like data set written in the release's layout (annotation JSON + ``(T, C)`` ``.npy``).

Videos of 24-34 s at 30 fps with features every 4 frames over 16-frame clips (THUMOS14's I3D
grid). Each holds 2-6 non-overlapping actions of 1.5-10 s (log-normal lengths, THUMOS-like) of
``num_classes`` classes. A feature step is background noise (Gaussian plus a slow random drift and
class-free distractor patterns) to which an action adds its class pattern, weighted by the share of
the step's clip inside the action; the pattern moves from a class "onset" vector to an "offset"
vector over the action, so boundaries are visible in the features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tal.core.formats import AnnotationSet, VideoAnnotation, write_annotations, write_features
from tal.core.types import Segments

FPS = 30.0
FEAT_STRIDE = 4
NUM_FRAMES = 16


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape of the generated set."""

    num_classes: int = 5
    input_dim: int = 32
    num_train: int = 48
    num_val: int = 16
    min_duration: float = 24.0
    max_duration: float = 34.0
    noise: float = 0.8
    amplitude: float = 1.4
    seed: int = 0

    @property
    def max_steps(self) -> int:
        """Feature steps of the longest possible video."""
        return int((self.max_duration * FPS - NUM_FRAMES) // FEAT_STRIDE) + 1


def _actions(rng: np.random.Generator, duration: float, num_classes: int) -> list[tuple[float, float, int]]:
    n = int(rng.integers(2, 7))
    lengths = np.clip(rng.lognormal(np.log(4.0), 0.55, n), 1.5, 10.0)
    free = duration - lengths.sum() - 1.0
    if free <= 0:
        lengths = lengths * (duration - 1.0) / lengths.sum() * 0.7
        free = duration - lengths.sum() - 1.0
    gaps = rng.dirichlet(np.ones(n + 1)) * free
    out, t = [], 0.5
    for i in range(n):
        t += gaps[i]
        out.append((round(float(t), 3), round(float(t + lengths[i]), 3), int(rng.integers(0, num_classes))))
        t += lengths[i]
    return out


def make_video(
    rng: np.random.Generator, spec: SyntheticSpec, patterns: np.ndarray, distractors: np.ndarray
) -> tuple[np.ndarray, float, list[tuple[float, float, int]]]:
    """One video: ``(features (C, T) float32, duration, [(start s, end s, class)])``."""
    duration = float(rng.uniform(spec.min_duration, spec.max_duration))
    steps = int((duration * FPS - NUM_FRAMES) // FEAT_STRIDE) + 1
    acts = _actions(rng, duration, spec.num_classes)
    clip_start = np.arange(steps) * FEAT_STRIDE / FPS
    clip_end = clip_start + NUM_FRAMES / FPS
    drift = np.cumsum(rng.normal(0, 0.05, (spec.input_dim, steps)), axis=1)
    feats = rng.normal(0, spec.noise, (spec.input_dim, steps)) + drift - drift.mean(1, keepdims=True)
    for _ in range(int(rng.integers(1, 4))):  # class-free events
        a = int(rng.integers(0, steps - 8))
        b = min(steps, a + int(rng.integers(4, 30)))
        feats[:, a:b] += spec.amplitude * 0.6 * distractors[int(rng.integers(0, len(distractors)))][:, None]
    for s, e, c in acts:
        share = np.clip((np.minimum(clip_end, e) - np.maximum(clip_start, s)) / (NUM_FRAMES / FPS), 0, 1)
        phase = np.clip((0.5 * (clip_start + clip_end) - s) / (e - s), 0, 1)
        onset, offset = patterns[c]
        pat = onset[:, None] * (1 - phase) + offset[:, None] * phase
        feats += spec.amplitude * rng.uniform(0.8, 1.2) * share[None, :] * pat
    return feats.astype(np.float32), duration, acts


def write_synthetic_thumos(root: str | Path, spec: SyntheticSpec = SyntheticSpec()) -> tuple[Path, Path]:
    """Write ``root/annotations/synthetic_thumos.json`` (subsets ``validation`` for training and ``test``,
    as THUMOS14) and ``root/i3d_features/<video>.npy``; returns ``(annotation file, feature folder)``."""
    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    basis = np.linalg.qr(rng.normal(size=(spec.input_dim, spec.input_dim)))[0]
    need = 2 * spec.num_classes + 3
    if need > spec.input_dim:
        raise ValueError(f"input_dim must be at least {need} for {spec.num_classes} classes")
    vecs = basis[:, :need].T * np.sqrt(spec.input_dim / 4)
    patterns = vecs[: 2 * spec.num_classes].reshape(spec.num_classes, 2, spec.input_dim)
    distractors = vecs[2 * spec.num_classes :]
    feat_dir = root / "i3d_features"
    videos: dict[str, VideoAnnotation] = {}
    for i in range(spec.num_train + spec.num_val):
        subset = "validation" if i < spec.num_train else "test"
        vid = f"video_{subset}_{i:05d}"
        feats, duration, acts = make_video(rng, spec, patterns, distractors)
        write_features(feat_dir / f"{vid}.npy", torch.from_numpy(feats), layout="TC")
        segs = Segments(
            torch.tensor([[s, e] for s, e, _ in acts], dtype=torch.float64),
            torch.tensor([c for _, _, c in acts], dtype=torch.int64),
        )
        videos[vid] = VideoAnnotation(vid, subset, segs, duration=round(duration, 3), fps=FPS)
    classes = {c: f"action_{c}" for c in range(spec.num_classes)}
    ann_file = root / "annotations" / "synthetic_thumos.json"
    write_annotations(ann_file, AnnotationSet(videos, classes, version="synthetic-thumos"), indent=1)
    return ann_file, feat_dir
