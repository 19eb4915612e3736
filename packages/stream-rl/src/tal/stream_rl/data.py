"""Datasets for streaming segmentation beyond tal-core's ``mstcn`` and ``synthetic-segmentation``.

``svtas-rl`` reads any tal-core segmentation batch at the full frame rate (``mstcn`` with
``sample_rate: 1``: the model cuts clips and samples frames itself), whole videos or pieces of them:

- ``stream-clips``: the training items of the release's stream loader. It wraps any registered
  dataset of videos and serves runs of ``clips_per_item`` consecutive clips (cut at the clip
  boundaries of the whole video), so the ``Trainer`` takes an optimizer step per clip as the release
  does; each item carries its video's clip count, by which the release normalises the clip loss.

Two synthetic datasets:

- ``synthetic-from-labels``: real label sequences (MS-TCN ``groundTruth/*.txt`` + ``mapping.txt``, e.g.
  the Breakfast files of ``../shared/data/segmentation``) with synthetic features, so a model meets
  real action orders and durations without the real features;
- ``synthetic-rgb-segmentation``: RGB frames ``(3, T, H, W)`` rendered from ``synthetic-segmentation``
  labels, for the end-to-end RGB backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from tal.core.config import ComponentConfig
from tal.core.datasets import IGNORE_INDEX, SyntheticSegmentation, SyntheticSegmentationConfig, collate_segmentation
from tal.core.errors import DataFormatError
from tal.core.formats import read_ground_truth, read_mapping
from tal.core.types import VideoRecord
from tal.stream_rl.clips import ClipSpec


def synthetic_features(
    labels: np.ndarray, means: np.ndarray, drifts: np.ndarray, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """``(C, T)`` float32 features of a ``(T,)`` label sequence.

    ``x_t = m_k + (p_t - 0.5) d_k + noise · ε_t`` for a frame of class ``k`` at relative position
    ``p_t ∈ (0, 1)`` inside its segment (``means``, ``drifts``: ``(K, C)``), as tal-core's synthetic data.
    """
    n = len(labels)
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]])
    progress = np.empty(n)
    for s, e in zip(starts, ends, strict=True):
        progress[s:e] = (np.arange(e - s) + 0.5) / (e - s)
    feats = means[labels] + (progress[:, None] - 0.5) * drifts[labels] + noise * rng.normal(size=(n, means.shape[1]))
    return np.ascontiguousarray(feats.T, dtype=np.float32)


class SyntheticFromLabelsConfig(ComponentConfig):
    """Config of :class:`SyntheticFromLabels`."""

    name: Literal["synthetic-from-labels"] = "synthetic-from-labels"
    ground_truth_dir: str = Field(..., description="folder of MS-TCN label files (<video>.txt, one label per line)")
    mapping_file: str = Field(..., description="MS-TCN mapping.txt ('idx name' lines)")
    videos: list[int] | None = Field(None, description="indices into the sorted label files (default: all)")
    subsample: int = Field(1, ge=1, description="keep every k-th labelled frame (shorter videos, same structure)")
    input_dim: int = Field(32, ge=1)
    separation: float = Field(2.0, ge=0, description="scale of the class means")
    noise: float = Field(1.0, ge=0)
    fps: float = Field(15.0, gt=0, description="frame rate of the kept frames")
    seed: int = 0


class SyntheticFromLabels:
    """Map-style dataset of :class:`VideoRecord`: real frame labels, features drawn per class."""

    def __init__(self, config: SyntheticFromLabelsConfig) -> None:
        self.config = config
        mapping = read_mapping(config.mapping_file)
        self.class_names = list(mapping)
        self.num_classes = len(mapping)
        gt_dir = Path(config.ground_truth_dir)
        if not gt_dir.is_dir():
            raise DataFormatError(gt_dir, "ground_truth_dir: not a folder")
        files = sorted(gt_dir.glob("*.txt"))
        if not files:
            raise DataFormatError(gt_dir, "ground_truth_dir: no .txt label files")
        chosen = range(len(files)) if config.videos is None else config.videos
        for i in chosen:
            if not 0 <= i < len(files):
                raise DataFormatError(gt_dir, f"videos: index {i} out of range for {len(files)} label files")
        self._files = [files[i] for i in chosen]
        self._labels = [read_ground_truth(f, mapping)[:: config.subsample] for f in self._files]
        rng = np.random.default_rng([config.seed, 0])
        k, c = self.num_classes, config.input_dim
        self.means = config.separation * rng.normal(size=(k, c)) / np.sqrt(c)
        self.drifts = config.separation * rng.normal(size=(k, c)) / np.sqrt(c)

    def __len__(self) -> int:
        return len(self._files)

    @property
    def video_ids(self) -> list[str]:
        return [f.stem for f in self._files]

    def __getitem__(self, index: int) -> VideoRecord:
        labels = self._labels[index]
        rng = np.random.default_rng([self.config.seed, 1, index])
        feats = synthetic_features(labels, self.means, self.drifts, self.config.noise, rng)
        return VideoRecord(
            video_id=self._files[index].stem,
            features=torch.from_numpy(feats),
            fps=self.config.fps,
            duration=len(labels) / self.config.fps,
            frame_labels=torch.from_numpy(labels.astype(np.int64)),
            meta={"label_file": str(self._files[index])},
        )

    def collate(self, items: Sequence[VideoRecord]) -> dict[str, Any]:
        """tal-core's segmentation batch: ``features (B, C, T)``, ``mask``, ``labels`` (-100 padded), ``targets``."""
        return collate_segmentation(items)


class SyntheticRGBConfig(SyntheticSegmentationConfig):
    """Config of :class:`SyntheticRGBSegmentation` (labels as ``synthetic-segmentation``)."""

    name: Literal["synthetic-rgb-segmentation"] = "synthetic-rgb-segmentation"  # type: ignore[assignment]
    height: int = Field(32, ge=4)
    width: int = Field(32, ge=4)
    pixel_noise: float = Field(0.3, ge=0)


class SyntheticRGBSegmentation:
    """RGB videos ``(3, T, H, W)``: each class paints a colour and a stripe pattern that moves as the action goes on."""

    def __init__(self, config: SyntheticRGBConfig) -> None:
        self.config = config
        label_cfg = SyntheticSegmentationConfig(
            **{
                k: v
                for k, v in config.model_dump().items()
                if k in SyntheticSegmentationConfig.model_fields and k != "name"
            }
        )
        self.labels_source = SyntheticSegmentation(label_cfg)
        self.class_names = self.labels_source.class_names
        self.num_classes = self.labels_source.num_classes
        rng = np.random.default_rng([config.seed, 2])
        self.colors = rng.uniform(-1, 1, size=(self.num_classes, 3)).astype(np.float32)
        self.angles = rng.uniform(0, np.pi, size=self.num_classes)
        self.frequencies = rng.uniform(1.0, 3.0, size=self.num_classes)

    def __len__(self) -> int:
        return len(self.labels_source)

    @property
    def video_ids(self) -> list[str]:
        return self.labels_source.video_ids

    def render(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(3, T, H, W)`` float32 frames of a ``(T,)`` label sequence."""
        cfg = self.config
        yy, xx = np.meshgrid(np.linspace(-1, 1, cfg.height), np.linspace(-1, 1, cfg.width), indexing="ij")
        t = np.arange(len(labels))
        phase = 0.2 * t
        direction = np.cos(self.angles[labels])[:, None, None] * xx + np.sin(self.angles[labels])[:, None, None] * yy
        stripes = np.sin(np.pi * self.frequencies[labels][:, None, None] * direction + phase[:, None, None])
        frames = self.colors[labels][:, :, None, None] * (0.5 + 0.5 * stripes[:, None])  # (T, 3, H, W)
        frames = frames + cfg.pixel_noise * rng.normal(size=frames.shape)
        return np.ascontiguousarray(frames.transpose(1, 0, 2, 3), dtype=np.float32)

    def __getitem__(self, index: int) -> VideoRecord:
        record = self.labels_source[index]
        assert record.frame_labels is not None
        labels = record.frame_labels.numpy()
        frames = self.render(labels, np.random.default_rng([self.config.seed, 3, index % len(self)]))
        return VideoRecord(
            video_id=record.video_id,
            features=torch.from_numpy(frames),
            fps=record.fps,
            duration=record.duration,
            frame_labels=record.frame_labels,
            segments=record.segments,
        )

    def collate(self, items: Sequence[VideoRecord]) -> dict[str, Any]:
        """``features (B, 3, T, H, W)`` zero-padded, ``mask (B, 1, T)``, ``labels (B, T)`` -100 padded, ``targets``."""
        return collate_frames(items)


def collate_frames(items: Sequence[VideoRecord]) -> dict[str, Any]:
    """Batch videos of frames ``(C, T, H, W)`` like tal-core's segmentation collate batches features."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    frames, frame_labels = [], []
    for r in items:
        if r.features is None or r.frame_labels is None:
            raise ValueError(f"video {r.video_id!r}: frames or labels are not loaded")
        frames.append(r.features)
        frame_labels.append(r.frame_labels)
    t_max = max(f.shape[1] for f in frames)
    first = frames[0]
    out = first.new_zeros((len(frames), first.shape[0], t_max, *first.shape[2:]))
    mask = torch.zeros(len(frames), 1, t_max, dtype=torch.bool)
    labels = torch.full((len(frames), t_max), IGNORE_INDEX, dtype=torch.int64)
    for i, (f, y) in enumerate(zip(frames, frame_labels, strict=True)):
        n = f.shape[1]
        out[i, :, :n] = f
        mask[i, :, :n] = True
        labels[i, :n] = y
    return {
        "video_ids": [r.video_id for r in items],
        "features": out,
        "mask": mask,
        "labels": labels,
        "records": list(items),
        "targets": frame_labels,
    }


class StreamClipsConfig(ComponentConfig):
    """Config of :class:`StreamClips`; ``clip_len`` and ``sample_rate`` must be the model's."""

    name: Literal["stream-clips"] = "stream-clips"
    source: dict[str, Any] = Field(
        ..., description="config of the registered dataset of whole videos to cut (validated when built)"
    )
    clip_len: int = Field(..., ge=1, description="sampled frames per clip (the model's clip_len)")
    sample_rate: int = Field(..., ge=1, description="the model's sample_rate")
    clips_per_item: int = Field(1, ge=1, description="consecutive clips per training item (1: the release)")


def source_config(source: dict[str, Any], registry: Any) -> Any:
    """Validate ``source`` against the config of the registered dataset it names.

    (A dataset config cannot hold a ``component_field("datasets")``: the union of dataset configs
    would contain itself.)
    """
    from tal.core.config import resolved_model, validate
    from tal.core.errors import ConfigError

    name = source.get("name") if isinstance(source, dict) else None
    if name not in registry.names("datasets") or name == "stream-clips":
        allowed = [n for n in registry.names("datasets") if n != "stream-clips"]
        raise ConfigError(f"stream-clips source: unknown dataset name {name!r}; allowed names: {allowed}")
    cls = registry.get("datasets", name).config
    return validate(resolved_model(cls, registry), source, "(stream-clips source)")


class StreamClips:
    """Runs of consecutive clips of the videos of ``source``, as training items.

    Item ``(v, k)`` holds frames ``[k W, min((k + m) W, T_v))`` of video ``v`` (``m = clips_per_item``),
    its labels, and ``meta["video_clips"] = ceil(T_v / W)``. The clips of an item are exactly the
    clips ``k .. k + m - 1`` of the whole video. Building the index reads every video once (lengths).
    """

    def __init__(self, config: StreamClipsConfig, registry: Any = None) -> None:
        if registry is None:
            raise ValueError("stream-clips builds its source dataset through the registry; pass registry=")
        self.config = config
        self.spec = ClipSpec(config.clip_len, config.sample_rate)
        self.source = registry.build("datasets", source_config(config.source, registry))
        self.class_names = getattr(self.source, "class_names", None)
        self.num_classes = getattr(self.source, "num_classes", None)
        self._items: list[tuple[int, int, int]] = []  # (video, first clip, clips of the video)
        for v in range(len(self.source)):
            n_clips = self.spec.num_clips(self._length(v))
            for k in range(0, n_clips, config.clips_per_item):
                self._items.append((v, k, n_clips))

    def _length(self, v: int) -> int:
        record = self.source[v]
        if record.frame_labels is None:
            raise DataFormatError(str(record.video_id), "stream-clips needs frame labels (training data)")
        return int(record.frame_labels.shape[0])

    def __len__(self) -> int:
        return len(self._items)

    @property
    def video_ids(self) -> list[str]:
        ids = self.source.video_ids
        return [f"{ids[v]}@clip{k}" for v, k, _ in self._items]

    def __getitem__(self, index: int) -> VideoRecord:
        v, k, n_clips = self._items[index]
        record = self.source[v]
        assert record.features is not None and record.frame_labels is not None
        w = self.spec.window
        start = k * w
        end = min(start + self.config.clips_per_item * w, int(record.frame_labels.shape[0]))
        return VideoRecord(
            video_id=f"{record.video_id}@clip{k}",
            features=record.features[:, start:end].contiguous(),
            fps=record.fps,
            duration=(end - start) / record.fps,
            frame_labels=record.frame_labels[start:end],
            meta={"video_clips": n_clips, "first_clip": k, "source_video": record.video_id},
        )

    def collate(self, items: Sequence[VideoRecord]) -> dict[str, Any]:
        """The source's batch layout plus ``clips_per_video (B,)`` and ``clip_window`` (to check the model's)."""
        batch = (
            collate_frames(items)
            if items[0].features is not None and items[0].features.dim() > 2
            else collate_segmentation(items)
        )
        batch["clips_per_video"] = torch.tensor([r.meta["video_clips"] for r in items], dtype=torch.float32)
        batch["clip_window"] = self.spec.window
        return batch
