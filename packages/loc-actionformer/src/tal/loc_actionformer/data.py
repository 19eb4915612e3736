"""``actionformer-features``: the release's THUMOS14 / ActivityNet / EPIC-Kitchens / Ego4D data loaders.

One annotation file (ActivityNet-style JSON, read with :func:`tal.core.formats.read_annotations`)
and one feature file per video (``(T, C)`` ``.npy``/``.npz``/``.pt``; several folders are
concatenated along channels, as for Ego4D's Omnivore + EgoVLP). ``dataset_name`` selects the
release's per-dataset rules:

- ``thumos``: videos without a feature file are skipped; Cliff Diving (label id 4, a subset of
  Diving) is trained as a second label of its Diving segments, as the release does since May 2022
  (older versions left it out of the training targets: ``train_ignore_label_ids: [4]`` with
  ``head_empty_cls: [4]`` does that; ignored ids stay in the ground truth the metric scores).
- ``anet``: ``num_classes: 1`` trains one "action" class (labels of the model targets are 0; the
  metric keeps the real ones, for fusion with external class scores); features may be resized to
  ``max_seq_len`` (``force_upsampling``, or ``feat_stride <= 0`` for fixed-length features, see
  :func:`prepare_features`); duplicate annotations (same label, both ends within 1 ms) are one
  target (:func:`first_of_duplicates`); in training, segments past the features are dropped or clipped.
- ``epic``: features under key ``feats`` in ``.npz`` files; classes without any annotation are
  reported in :attr:`ActionFormerFeatures.empty_label_ids` (the model takes them from the same
  file with ``train_cfg.head_empty_cls_from``).
- ``ego4d``: videos missing in any feature folder are skipped.

Times: seconds → grid is ``g = t * fps / feat_stride - 0.5 * num_frames / feat_stride`` (after
downsampling ``feat_stride`` is multiplied by ``downsample_rate``); a missing ``fps`` takes
``default_fps`` (which also overrides the file's), a missing ``duration`` is 1e8 as in the release.
With ``training: true`` items are cropped to ``max_seq_len`` (:func:`truncate_feats`); the crops
draw random numbers from Python's ``random`` module (seeded and saved by tal's trainer, so resumed
runs repeat the same crops).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from tal.core.config import ComponentConfig
from tal.core.datasets import locate_videos
from tal.core.errors import ConfigError, DataFormatError
from tal.core.formats import VideoAnnotation, read_annotations, read_features
from tal.core.types import Segments, VideoRecord
from tal.loc_actionformer.modeling.heads import empty_label_ids

DatasetName = Literal["thumos", "anet", "epic", "ego4d"]
MISSING_DURATION = 1e8
#: the frame rate of every video in the release's annotation file, for datasets whose configs set no
#: ``default_fps`` (one feature file given without its annotations, as ``tal infer`` reads it)
RELEASE_VIDEO_FPS: dict[str, float] = {"thumos": 30.0}


class ActionFormerFeaturesConfig(ComponentConfig):
    """The release's ``dataset`` section (plus the split and whether it is used for training)."""

    name: Literal["actionformer-features"] = "actionformer-features"
    dataset_name: DatasetName = "thumos"
    annotation_file: str = Field(description="ActivityNet-style JSON (the release's json_file)")
    feature_dir: str | list[str] = Field(description="feature folder(s) (feat_folder); several are concatenated")
    subset: str | list[str] | None = Field(None, description="split(s), case-insensitive; None = all videos")
    training: bool = Field(False, description="crop to max_seq_len and clean targets as the release's training")
    feat_stride: float = Field(4, description="frames between feature steps; <= 0: fixed-length features")
    num_frames: float = Field(16, gt=0, description="frames seen by one feature step")
    default_fps: float | None = Field(None, gt=0)
    downsample_rate: int = Field(1, ge=1)
    max_seq_len: int = Field(2304, ge=1)
    trunc_thresh: float = Field(0.5, ge=0, le=1)
    crop_ratio: tuple[float, float] | None = None
    force_upsampling: bool = False
    input_dim: int | None = Field(None, ge=1, description="expected channels after concatenation (checked)")
    num_classes: int | None = Field(None, ge=1, description="the model's classes (checked against the file)")
    file_prefix: str | None = ""
    file_ext: str = ".npy"
    feature_key: str | None = Field(None, description="array key in .npz/.pt files; EPIC default 'feats'")
    feature_layout: Literal["TC", "CT"] = "TC"
    ignore_labels: list[str] = Field(default_factory=lambda: ["Ambiguous"])
    train_ignore_label_ids: list[int] = Field(
        default_factory=list,
        description="class ids left out of the training targets (still scored); the release before May 2022 "
        "left THUMOS14's Cliff Diving (4) out",
    )

    @model_validator(mode="after")
    def _check(self) -> ActionFormerFeaturesConfig:
        if self.crop_ratio is not None and not 0 < self.crop_ratio[0] <= self.crop_ratio[1] <= 1:
            raise ValueError(f"crop_ratio must satisfy 0 < lo <= hi <= 1, got {list(self.crop_ratio)}")
        if self.feat_stride <= 0 and self.dataset_name != "anet":
            raise ValueError("feat_stride <= 0 (fixed-length features) is only supported for dataset_name 'anet'")
        return self

    @property
    def feature_dirs(self) -> list[str]:
        return [self.feature_dir] if isinstance(self.feature_dir, str) else list(self.feature_dir)

    @property
    def array_key(self) -> str | None:
        return self.feature_key if self.feature_key is not None or self.dataset_name != "epic" else "feats"


def prepare_features(
    features: torch.Tensor, config: ActionFormerFeaturesConfig, fps: float, duration: float | None
) -> tuple[torch.Tensor, float, float]:
    """Downsample or resize ``(C, T)`` features; returns ``(features, feat_stride, num_frames)`` of the result.

    The release's three cases (``libs/datasets/anet.py``):

    1. ``feat_stride > 0`` without ``force_upsampling``: keep every ``downsample_rate``-th step,
       ``feat_stride *= downsample_rate``.
    2. ``feat_stride > 0`` with ``force_upsampling``: ``feat_stride = ((T - 1) * feat_stride + num_frames)
       / max_seq_len`` and ``num_frames = feat_stride`` (each resized step is centred on its span).
    3. ``feat_stride <= 0`` (fixed-length features, ``T <= max_seq_len``): ``feat_stride = duration * fps
       / L`` with ``L = max_seq_len`` if ``force_upsampling`` else ``T``; ``num_frames = feat_stride``.

    With ``force_upsampling`` the features are then resized to ``max_seq_len`` steps (linear
    interpolation, ``align_corners=False``).
    """
    cfg = config
    steps = features.shape[-1]
    if cfg.feat_stride > 0 and not cfg.force_upsampling:
        stride, nframes = float(cfg.feat_stride), float(cfg.num_frames)
        if cfg.downsample_rate > 1:
            features = features[:, :: cfg.downsample_rate].contiguous()
            stride *= cfg.downsample_rate
    elif cfg.feat_stride > 0:
        stride = float((steps - 1) * cfg.feat_stride + cfg.num_frames) / cfg.max_seq_len
        nframes = stride
    else:
        if steps > cfg.max_seq_len:
            raise DataFormatError(
                "<features>", f"fixed-length features have {steps} steps, more than max_seq_len {cfg.max_seq_len}"
            )
        if duration is None or duration >= MISSING_DURATION:
            raise DataFormatError("<features>", "fixed-length features (feat_stride <= 0) need the video duration")
        stride = duration * fps / (cfg.max_seq_len if cfg.force_upsampling else steps)
        nframes = stride
    if cfg.force_upsampling and features.shape[-1] != cfg.max_seq_len:
        features = F.interpolate(features[None], size=cfg.max_seq_len, mode="linear", align_corners=False)[0]
    return features, stride, nframes


class ActionFormerFeatures:
    """Map-style dataset of :class:`~tal.core.types.VideoRecord` (features loaded on access).

    A record's ``segments`` are the ground truth in seconds (for the metric); ``meta["grid_segments"]``
    and ``meta["grid_labels"]`` are the model's targets in grid units (cropped in training).

    Attributes:
        annotations: the selected videos; ``class_names`` by id; ``skipped``: videos left out for a
        missing feature file (THUMOS14, Ego4D); ``empty_label_ids``: classes without annotations.
    """

    def __init__(self, config: ActionFormerFeaturesConfig) -> None:
        self.config = config
        cfg = config
        full = read_annotations(cfg.annotation_file, ignore_labels=cfg.ignore_labels)
        self.class_names = full.class_names
        agnostic = cfg.dataset_name == "anet" and cfg.num_classes == 1  # one "action" class
        if cfg.num_classes is not None and not agnostic and full.num_classes > cfg.num_classes:
            raise ConfigError(
                f"{cfg.annotation_file}: the file has class ids up to {full.num_classes - 1} but num_classes "
                f"is {cfg.num_classes}; set the dataset's and the model's num_classes to {full.num_classes}"
            )
        self.num_classes = cfg.num_classes if cfg.num_classes is not None else full.num_classes
        self.empty_label_ids = empty_label_ids(full, self.num_classes) if cfg.dataset_name == "epic" else []
        ann = full.filter(subset=cfg.subset) if cfg.subset is not None else full
        self.annotations = ann
        located, self.skipped = locate_videos(
            ann,
            cfg.feature_dirs,
            annotation_file=cfg.annotation_file,
            default_fps=cfg.default_fps,
            prefix=cfg.file_prefix or "",
            ext=cfg.file_ext,
            skip_missing=cfg.dataset_name in ("thumos", "ego4d"),
        )
        self._items: list[tuple[VideoAnnotation, list[Path], float]] = [(x.video, x.paths, x.fps) for x in located]
        if not self._items:
            raise DataFormatError(cfg.annotation_file, f"no video with features selected (subset {cfg.subset!r})")

    def __len__(self) -> int:
        return len(self._items)

    @property
    def video_ids(self) -> list[str]:
        return [v.video_id for v, _, _ in self._items]

    def load_features(self, paths: Sequence[Path]) -> torch.Tensor:
        """``(C, T)`` float32 features of one video (folders concatenated along channels)."""
        cfg = self.config
        parts = [read_features(p, layout=cfg.feature_layout, key=cfg.array_key) for p in paths]
        if len({p.shape[1] for p in parts}) != 1:
            lengths = ", ".join(f"{p}: {x.shape[1]}" for p, x in zip(paths, parts, strict=True))
            raise DataFormatError(paths[0], f"feature files of one video differ in length ({lengths})")
        feats = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        if cfg.input_dim is not None and feats.shape[0] != cfg.input_dim:
            raise DataFormatError(
                paths[0], f"features have {feats.shape[0]} channels but input_dim is {cfg.input_dim}; set input_dim"
            )
        return feats

    def __getitem__(self, index: int) -> VideoRecord:
        cfg = self.config
        video, paths, fps = self._items[index]
        duration = video.duration if video.duration is not None else MISSING_DURATION
        feats, stride, nframes = prepare_features(self.load_features(paths), cfg, fps, duration)
        offset = 0.5 * nframes / stride
        gt = video.segments
        grid = (gt.segments.float() * fps / stride - offset).float()
        labels = gt.labels.clone()
        if cfg.dataset_name == "anet":
            first = first_of_duplicates(gt.segments, gt.labels)
            grid, labels = grid[first], labels[first]
        if cfg.dataset_name == "anet" and cfg.num_classes == 1:
            labels = torch.zeros_like(labels)
        if cfg.training:
            ignored = cfg.train_ignore_label_ids
            if ignored:
                keep = ~torch.isin(gt.labels, torch.tensor(ignored, dtype=gt.labels.dtype))
                grid, labels = grid[keep], labels[keep]
            if cfg.dataset_name == "anet":
                grid, labels = drop_outside(grid, labels, feats.shape[-1], offset, cfg.trunc_thresh)
            feats, grid, labels = truncate_feats(
                feats, grid, labels, cfg.max_seq_len, cfg.trunc_thresh, offset, cfg.crop_ratio
            )
        return VideoRecord(
            video_id=video.video_id,
            features=feats,
            fps=fps,
            feat_stride=stride,
            num_frames=nframes,
            duration=float(duration),
            segments=Segments(gt.segments.clone(), gt.labels.clone()),
            meta={"subset": video.subset, "grid_segments": grid, "grid_labels": labels},
        )

    def collate(self, items: Sequence[VideoRecord]) -> dict[str, Any]:
        """A batch for the model and the metric (see :func:`collate`)."""
        return collate(items)


def collate(items: Sequence[VideoRecord]) -> dict[str, Any]:
    """``video_ids``, ``features`` (list of ``(C, T_i)``), the model's targets ``segments``/``labels``
    (grid units), the metric's ``targets`` (:class:`Segments` in seconds) and per-video ``fps``,
    ``feat_stride``, ``num_frames``, ``duration``."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    for r in items:
        if r.features is None:
            raise ValueError(f"video {r.video_id!r}: features are not loaded")
    return {
        "video_ids": [r.video_id for r in items],
        "features": [r.features for r in items],
        "segments": [r.meta.get("grid_segments", torch.zeros(0, 2)) for r in items],
        "labels": [r.meta.get("grid_labels", torch.zeros(0, dtype=torch.int64)) for r in items],
        "targets": [r.segments if r.segments is not None else Segments.empty() for r in items],
        "fps": [float(r.fps) for r in items],
        "feat_stride": [float(r.feat_stride) for r in items],
        "num_frames": [float(r.num_frames) for r in items],
        "duration": [float(r.duration) for r in items],
    }


def batch_from_records(records: Sequence[VideoRecord]) -> dict[str, Any]:
    """A model batch from core video records (ground truth converted from seconds to the feature grid)."""
    batch: dict[str, Any] = {
        "video_ids": [r.video_id for r in records],
        "features": [r.features for r in records],
        "fps": [float(r.fps) for r in records],
        "feat_stride": [float(r.feat_stride) for r in records],
        "num_frames": [float(r.num_frames) for r in records],
        "duration": [float(r.duration) for r in records],
    }
    if any(r.features is None for r in records):
        raise ValueError("every video record needs its features loaded")
    if all(r.segments is not None for r in records):
        gts = [r.segments for r in records if r.segments is not None]
        batch["segments"] = [r.seconds_to_grid(g.segments).float() for r, g in zip(records, gts, strict=True)]
        batch["labels"] = [g.labels for g in gts]
    return batch


# ---------------------------------------------------------------------------------------------
# Training crops (feature-grid units: segments (N, 2) float, labels (N,) int64, features (C, T))
# ---------------------------------------------------------------------------------------------
def truncate_feats(
    features: torch.Tensor,
    segments: torch.Tensor,
    labels: torch.Tensor,
    max_seq_len: int,
    trunc_thresh: float,
    offset: float,
    crop_ratio: tuple[float, float] | None = None,
    max_num_trials: int = 200,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop to at most ``max_seq_len`` steps, keeping the segments that stay mostly inside.

    The release's rule (``libs/datasets/data_utils.py::truncate_feats``):

    - ``T <= max_seq_len``: unchanged without ``crop_ratio``; otherwise the crop length is drawn
      uniformly from ``[max(round(lo * T), 1), min(round(hi * T), T)]`` (unchanged if it is ``T``).
    - up to ``max_num_trials`` times: draw a start ``st`` uniformly in ``[0, T - L]``, intersect every
      segment with ``[st - offset, st + L + offset]``, keep those covering at least ``trunc_thresh``
      of their length; stop at the first window keeping at least one (else the last draw is used).
    - kept segments are clipped to that interval and shifted by ``-st``.

    Returns:
        ``(features (C, L), segments (M, 2), labels (M,))``.
    """
    feat_len = features.shape[1]
    crop_len = max_seq_len
    if feat_len <= max_seq_len:
        if crop_ratio is None:
            return features, segments, labels
        crop_len = random.randint(
            max(round(crop_ratio[0] * feat_len), 1), min(round(crop_ratio[1] * feat_len), feat_len)
        )
        if crop_len == feat_len:
            return features, segments, labels
    segs = segments.float()
    lengths = (segs[:, 1] - segs[:, 0]).abs()
    st = 0
    left = right = segs[:, 0]
    keep = torch.zeros(segs.shape[0], dtype=torch.bool)
    for _ in range(max_num_trials):
        st = random.randint(0, feat_len - crop_len)
        left = torch.clamp(segs[:, 0], min=st - offset)
        right = torch.clamp(segs[:, 1], max=st + crop_len + offset)
        keep = (right - left).clamp(min=0) / lengths >= trunc_thresh  # 0/0 = NaN is never kept
        if bool(keep.any()):
            break
    cropped = torch.stack((left[keep], right[keep]), dim=1) - st
    return features[:, st : st + crop_len].clone(), cropped, labels[keep].clone()


#: two annotations closer than this (seconds, at both ends) with the same label are one (the release's ANet rule)
DUPLICATE_TOLERANCE = 1e-3


def first_of_duplicates(segments: torch.Tensor, labels: torch.Tensor, tol: float = DUPLICATE_TOLERANCE) -> torch.Tensor:
    """Indices of the annotations to keep: an annotation with the label of an earlier kept one and both
    ends within ``tol`` seconds of it is a duplicate (the release's ``remove_duplicate_annotations``,
    applied by its ActivityNet loader). ``segments`` ``(N, 2)`` seconds, ``labels`` ``(N,)``."""
    n = len(segments)
    if n < 2:
        return torch.arange(n)
    segs = segments.double()
    close = ((segs[:, None, :] - segs[None, :, :]).abs() <= tol).all(-1) & (labels[:, None] == labels[None, :])
    keep: list[int] = []
    for i in range(n):  # an annotation is compared with the kept ones only, as the release does
        if not any(bool(close[i, j]) for j in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


def drop_outside(
    segments: torch.Tensor, labels: torch.Tensor, num_steps: int, offset: float, trunc_thresh: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The release's ActivityNet training fix for videos with missing frames.

    With ``end = num_steps + offset``: a segment starting at or after ``end`` is dropped, one with
    less than ``trunc_thresh`` of its length before ``end`` (or zero length) is dropped, the others
    are clipped to ``end``.
    """
    end = num_steps + offset
    segs = segments.double()
    length = segs[:, 1] - segs[:, 0]
    ratio = (torch.clamp(segs[:, 1], max=end) - segs[:, 0]) / length.clamp(min=1e-12)
    keep = (segs[:, 0] < end) & (length > 0) & (ratio >= trunc_thresh)
    return torch.clamp(segments[keep].float(), max=end), labels[keep]
