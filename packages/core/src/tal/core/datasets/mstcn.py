"""``mstcn``: action segmentation data in MS-TCN's layout.

::

    <root>/features/<video>.npy      (C, T) float features, one column per frame
    <root>/groundTruth/<video>.txt   one label name per frame
    <root>/mapping.txt               "idx name" lines
    <root>/splits/<split>.bundle     "<video>.txt" lines

As in MS-TCN's ``batch_gen.py``, labels are cut to ``min(T_features, T_labels)`` and both features and
labels keep every ``sample_rate``-th frame (``length_mismatch="error"`` rejects differing lengths
instead). Records have ``feat_stride = sample_rate`` and ``num_frames = 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from tal.core.config import ComponentConfig
from tal.core.datasets._collate import collate_segmentation
from tal.core.errors import DataFormatError
from tal.core.formats import find_feature_file, read_bundle, read_features, read_ground_truth, read_mapping
from tal.core.formats.mstcn import video_id_of
from tal.core.types import VideoRecord


class MSTCNConfig(ComponentConfig):
    """Config of :class:`MSTCNDataset`; relative directories are taken inside ``root``."""

    name: Literal["mstcn"] = "mstcn"
    root: str
    split: str = Field(description="bundle file name inside <root>/splits/ (e.g. 'train.split1.bundle') or a path")
    features_dir: str = "features"
    ground_truth_dir: str = "groundTruth"
    mapping_file: str = "mapping.txt"
    sample_rate: int = Field(1, ge=1, description="keep every k-th frame (MS-TCN uses 2 for 50Salads)")
    fps: float = Field(15.0, gt=0, description="frame rate of the features (Breakfast, GTEA: 15)")
    feature_layout: Literal["CT", "TC"] = "CT"
    input_dim: int | None = Field(None, ge=1, description="expected feature channels (checked)")
    length_mismatch: Literal["truncate", "error"] = "truncate"


class MSTCNDataset:
    """Map-style dataset of :class:`VideoRecord` with ``frame_labels`` (ground truth read at init)."""

    def __init__(self, config: MSTCNConfig, entries: Sequence[str] | None = None) -> None:
        """``entries``: the bundle lines (``"<video>.txt"``) to use instead of reading ``config.split``
        (a caller that picks a subset of a split, such as a validation share, passes them)."""
        self.config = config
        root = Path(config.root)
        self.root = root
        mapping = read_mapping(root / config.mapping_file)
        self.class_names = list(mapping)
        self.num_classes = len(mapping)
        if entries is None:
            split = Path(config.split)
            entries = read_bundle(split if split.is_absolute() else root / "splits" / split)
        self._items: list[tuple[str, str, Path, Path, np.ndarray]] = []
        gt_dir, feat_dir = root / config.ground_truth_dir, root / config.features_dir
        for entry in entries:
            vid = video_id_of(entry)
            gt_path = gt_dir / entry
            labels = read_ground_truth(gt_path, mapping)
            feat_path = find_feature_file(feat_dir, vid, ext=".npy")
            self._items.append((vid, entry, gt_path, feat_path, labels))

    def __len__(self) -> int:
        return len(self._items)

    def label_counts(self) -> np.ndarray:
        """Frames of each class over every video's full-rate ground truth, ``(num_classes,)`` int64."""
        counts = np.bincount(np.concatenate([item[4] for item in self._items]), minlength=self.num_classes)
        return counts.astype(np.int64)

    @property
    def video_ids(self) -> list[str]:
        return [item[0] for item in self._items]

    def __getitem__(self, index: int) -> VideoRecord:
        vid, entry, gt_path, feat_path, labels = self._items[index]
        cfg = self.config
        feats = read_features(feat_path, layout=cfg.feature_layout, expected_channels=cfg.input_dim)
        n_feat, n_gt = feats.shape[1], labels.shape[0]
        if n_feat != n_gt and cfg.length_mismatch == "error":
            raise DataFormatError(feat_path, f"{n_feat} feature steps but {n_gt} frames in {gt_path}")
        n = min(n_feat, n_gt)
        sr = cfg.sample_rate
        return VideoRecord(
            video_id=vid,
            features=feats[:, :n:sr].contiguous(),
            fps=cfg.fps,
            feat_stride=float(sr),
            num_frames=1.0,
            duration=n / cfg.fps,
            frame_labels=torch.from_numpy(labels[:n:sr].copy()),
            meta={
                "split_entry": entry,
                "num_frames_full": n,
                "feature_steps": n_feat,
                "label_frames": n_gt,
                "feature_file": str(feat_path),
                "label_file": str(gt_path),
            },
        )

    def collate(self, items: Sequence[VideoRecord]) -> dict[str, Any]:
        """``video_ids``, ``features (B, C, T)``, ``mask (B, 1, T)``, ``labels (B, T)`` padded with
        ``-100``, ``records``, ``targets`` (``(T_i,)`` int64)."""
        return collate_segmentation(items)
