"""Batch assembly shared by the built-in datasets (see :mod:`tal.core.protocols` for the convention)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from tal.core.types import Segments, VideoRecord

IGNORE_INDEX = -100
"""Label of padded frames (``torch.nn.CrossEntropyLoss``'s default ``ignore_index``, as in MS-TCN)."""


def pad_features(records: Sequence[VideoRecord]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(C, T_i)`` features into ``(B, C, T_max)`` zeros-padded and a ``(B, 1, T_max)`` bool mask."""
    if not records:
        raise ValueError("cannot collate an empty batch")
    feats = []
    for r in records:
        if r.features is None:
            raise ValueError(f"video {r.video_id!r}: features are not loaded")
        feats.append(r.features)
    channels = {f.shape[0] for f in feats}
    if len(channels) != 1:
        sizes = ", ".join(f"{r.video_id}: {f.shape[0]}" for r, f in zip(records, feats, strict=True))
        raise ValueError(f"videos of a batch must have the same channel count ({sizes})")
    t_max = max(f.shape[1] for f in feats)
    out = feats[0].new_zeros(len(feats), feats[0].shape[0], t_max)
    mask = torch.zeros(len(feats), 1, t_max, dtype=torch.bool)
    for i, f in enumerate(feats):
        out[i, :, : f.shape[1]] = f
        mask[i, :, : f.shape[1]] = True
    return out, mask


def collate_localization(records: Sequence[VideoRecord]) -> dict[str, Any]:
    """``video_ids``, ``features (B, C, T)``, ``mask (B, 1, T)`` bool, ``records``, ``targets`` (Segments, seconds)."""
    features, mask = pad_features(records)
    return {
        "video_ids": [r.video_id for r in records],
        "features": features,
        "mask": mask,
        "records": list(records),
        "targets": [r.segments if r.segments is not None else Segments.empty() for r in records],
    }


def collate_segmentation(records: Sequence[VideoRecord]) -> dict[str, Any]:
    """Like :func:`collate_localization`, plus ``labels (B, T)`` int64 padded with ``-100``;
    ``targets`` are the ``(T_i,)`` int64 frame labels."""
    features, mask = pad_features(records)
    labels = torch.full((len(records), features.shape[-1]), IGNORE_INDEX, dtype=torch.int64)
    targets = []
    for i, r in enumerate(records):
        if r.frame_labels is None:
            raise ValueError(f"video {r.video_id!r}: no frame labels")
        if r.frame_labels.shape[0] != r.num_steps:
            raise ValueError(f"video {r.video_id!r}: {r.frame_labels.shape[0]} labels for {r.num_steps} feature steps")
        labels[i, : r.num_steps] = r.frame_labels
        targets.append(r.frame_labels)
    return {
        "video_ids": [r.video_id for r in records],
        "features": features,
        "mask": mask,
        "labels": labels,
        "records": list(records),
        "targets": targets,
    }
