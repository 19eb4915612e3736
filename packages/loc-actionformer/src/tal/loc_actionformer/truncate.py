"""Training-time cropping of a video's features and ground truth, as the release's data loaders do it.

All functions work in feature-grid units (``segments (N, 2)`` float, ``labels (N,)`` int64) on
``features (C, T)``, and draw random numbers from Python's ``random`` module (seeded and saved by
tal's trainer, so resumed runs repeat the same crops).
"""

from __future__ import annotations

import random

import torch


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
