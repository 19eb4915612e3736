"""``activitynet-features``: an ActivityNet-style annotation file plus one feature file per video.

This covers THUMOS14, ActivityNet 1.3, EPIC-Kitchens-100 and Ego4D-MQ as ActionFormer prepares
them. Items are :class:`~tal.core.types.VideoRecord` with features ``(C, T)`` and ground truth in
seconds; conversion to the feature grid is left to the model (``VideoRecord.seconds_to_grid``).

Conventions follow ActionFormer's loaders: ``default_fps``, when set, overrides the file's ``fps``;
``downsample_rate`` keeps every k-th feature step and multiplies the stride; a missing ``duration``
is derived from the features as ``((T - 1) * feat_stride + num_frames) / fps`` (T before downsampling).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from tal.core.config import ComponentConfig
from tal.core.datasets._collate import collate_localization
from tal.core.datasets._locate import locate_videos
from tal.core.errors import DataFormatError
from tal.core.formats import AnnotationSet, VideoAnnotation, read_annotations, read_features
from tal.core.types import Segments, VideoRecord


class ActivityNetFeaturesConfig(ComponentConfig):
    """Config of :class:`ActivityNetFeatures` (example: ActionFormer's THUMOS14 I3D setup is
    ``feat_stride=4, num_frames=16, subset="validation", input_dim=2048``)."""

    name: Literal["activitynet-features"] = "activitynet-features"
    annotation_file: str
    feature_dir: str
    subset: str | list[str] | None = Field(None, description="subset name(s), case-insensitive; None = all")
    feat_stride: float = Field(gt=0, description="frames between two feature steps")
    num_frames: float = Field(gt=0, description="frames seen by one feature step")
    default_fps: float | None = Field(None, gt=0, description="overrides the fps of the file")
    downsample_rate: int = Field(1, ge=1)
    feature_layout: Literal["TC", "CT"] = "TC"
    feature_key: str | None = Field(None, description="array key in .npz / .pt dict files (EPIC: 'feats')")
    file_prefix: str = ""
    file_suffix: str = ""
    file_ext: str = ".npy"
    input_dim: int | None = Field(None, ge=1, description="expected feature channels (checked)")
    classes: str | list[str] | None = Field(None, description="class-list file or names; default: from the file")
    ignore_labels: list[str] = Field(default_factory=lambda: ["Ambiguous"])
    zero_length: Literal["keep", "drop", "error"] = "keep"
    missing_features: Literal["error", "skip"] = Field(
        "error", description="'skip' drops videos without a feature file, as ActionFormer's THUMOS loader does"
    )


class ActivityNetFeatures:
    """Map-style dataset of :class:`VideoRecord` (features loaded on access).

    Attributes:
        annotations: the selected :class:`~tal.core.formats.AnnotationSet`.
        class_names: names by class id; ``num_classes`` is its length.
        skipped: video ids dropped for a missing feature file (``missing_features="skip"``).
    """

    def __init__(self, config: ActivityNetFeaturesConfig) -> None:
        self.config = config
        ann = read_annotations(
            config.annotation_file,
            classes=config.classes,
            ignore_labels=config.ignore_labels,
            zero_length=config.zero_length,
        )
        if config.subset is not None:
            ann = ann.filter(subset=config.subset)
        self.annotations: AnnotationSet = ann
        self.class_names = ann.class_names
        self.num_classes = ann.num_classes
        located, self.skipped = locate_videos(
            ann,
            [config.feature_dir],
            annotation_file=config.annotation_file,
            default_fps=config.default_fps,
            prefix=config.file_prefix,
            suffix=config.file_suffix,
            ext=config.file_ext,
            skip_missing=config.missing_features == "skip",
        )
        self._items: list[tuple[VideoAnnotation, Path, float]] = [(x.video, x.paths[0], x.fps) for x in located]
        if not self._items:
            raise DataFormatError(config.annotation_file, f"no video selected (subset {config.subset!r})")

    def __len__(self) -> int:
        return len(self._items)

    @property
    def video_ids(self) -> list[str]:
        return [v.video_id for v, _, _ in self._items]

    def __getitem__(self, index: int) -> VideoRecord:
        video, path, fps = self._items[index]
        cfg = self.config
        feats = read_features(path, layout=cfg.feature_layout, key=cfg.feature_key, expected_channels=cfg.input_dim)
        steps = feats.shape[1]
        if cfg.downsample_rate > 1:
            feats = feats[:, :: cfg.downsample_rate].contiguous()
        duration = video.duration
        if duration is None:
            duration = ((steps - 1) * cfg.feat_stride + cfg.num_frames) / fps
        segs = video.segments
        return VideoRecord(
            video_id=video.video_id,
            features=feats,
            fps=fps,
            feat_stride=cfg.feat_stride * cfg.downsample_rate,
            num_frames=cfg.num_frames,
            duration=float(duration),
            segments=Segments(segs.segments.clone(), segs.labels.clone()),
            meta={"subset": video.subset, "feature_file": str(path)},
        )

    def collate(self, items: Sequence[VideoRecord]) -> dict[str, Any]:
        """``video_ids``, ``features (B, C, T)`` zero-padded, ``mask (B, 1, T)`` bool, ``records``,
        ``targets`` (:class:`Segments` in seconds)."""
        return collate_localization(items)
