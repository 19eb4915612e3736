"""Frame labels after the network: filters, temporal up-sampling and segments in seconds.

The releases' rules, as functions of ``(T,)`` int64 label tensors (NumPy/SciPy do the filtering):

* ``purge`` (GTEA, 3 frames): every segment of at most ``value`` frames is split between its
  neighbours at its middle (the first goes to the next segment, the last to the previous one).
  TST's ``purge_short_segments`` keeps a lone segment; DiffAct's ``main.py`` measures the last
  segment one frame short and leaves its last frame alone (``convention="diffact"``).
* ``median`` of labels (TST's ``predict.py``: ``scipy.ndimage.median_filter`` over label ids) or of class
  probabilities (DiffAct's ``main.py``: per class, renormalised, before the argmax).
* up-sampling to the full frame rate: each prediction repeated ``sample_rate`` times (TST, MS-TCN),
  or DiffAct's ``restore_full_sequence`` (nearest sample tick, ticks at ``left_offset + k * rate``).

Nothing here imports the rest of the package beyond :mod:`tal.seg_tst.modeling.segments`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from scipy.interpolate import interp1d
from scipy.ndimage import median_filter

from tal.core.types import Segments
from tal.seg_tst.modeling.segments import Segmentation, paint, segments_of

__all__ = [
    "Segmentation",
    "labels_to_segments",
    "median_filter_labels",
    "median_filter_probs",
    "paint",
    "purge_short_segments",
    "restore_full_sequence",
    "segments_of",
    "upsample_repeat",
]


def purge_short_segments(
    labels: torch.Tensor, max_len: int, convention: Literal["tst", "diffact"] = "tst"
) -> torch.Tensor:
    """Reassign segments of ``<= max_len`` frames to their neighbours (see the module docstring) → ``(T,)``.

    Segments are visited left to right with boundaries fixed from the input, as the releases do.
    """
    out = labels.clone()
    seg = segments_of(labels)
    starts, ends, labs = seg.starts.tolist(), seg.ends.tolist(), seg.labels.tolist()
    n = len(starts)
    if convention == "diffact":
        ends[-1] -= 1  # DiffAct's get_labels_start_end_time ends the last segment at T - 1
    short = [e for e in range(n) if ends[e] - starts[e] <= max_len]
    for e in short:  # loop over the (few) short segments only
        s, t = starts[e], ends[e]
        if n == 1:
            continue  # nothing to merge into (DiffAct's code would fail here; TST's keeps the segment)
        if e == 0:
            out[s:t] = labs[1]
        elif e == n - 1:
            out[s:t] = labs[e - 1]
        else:
            mid = s + (t - s) // 2
            out[s:mid] = labs[e - 1]
            out[mid:t] = labs[e + 1]
    return out


def median_filter_labels(labels: torch.Tensor, size: int) -> torch.Tensor:
    """TST's median post-processing: ``scipy.ndimage.median_filter(labels, size)`` on label ids (reflect)."""
    if size <= 1:
        return labels.clone()
    out = median_filter(labels.cpu().numpy(), size=size)
    return torch.from_numpy(np.ascontiguousarray(out)).to(labels.device)


def median_filter_probs(probs: torch.Tensor, size: int) -> torch.Tensor:
    """DiffAct's median post-processing of ``probs (K, T)``: a median filter of ``size`` along time per
    class, then each frame renormalised to sum to one → ``(K, T)``."""
    arr = probs.detach().cpu().numpy()
    smoothed = median_filter(arr, size=(1, size))
    with np.errstate(invalid="ignore", divide="ignore"):
        smoothed = smoothed / smoothed.sum(0, keepdims=True)
    return torch.from_numpy(np.ascontiguousarray(smoothed)).to(probs.device, probs.dtype)


def upsample_repeat(labels: torch.Tensor, sample_rate: int, full_len: int) -> torch.Tensor:
    """Each label repeated ``sample_rate`` times, cut (or extended with the last label) to ``full_len``."""
    out = labels.repeat_interleave(sample_rate)[:full_len]
    if out.numel() < full_len:
        out = torch.cat([out, out[-1:].expand(full_len - out.numel())])
    return out


def restore_full_sequence(
    labels: torch.Tensor, full_len: int, left_offset: int, right_offset: int, sample_rate: int
) -> torch.Tensor:
    """DiffAct's ``restore_full_sequence``: labels at ticks ``left_offset, left_offset + rate, …`` (below
    ``full_len - right_offset``) spread to every frame by nearest-tick interpolation (SciPy's ``interp1d``),
    the first/last value held before/after the ticks."""
    ticks = np.arange(left_offset, full_len - right_offset, sample_rate)
    x = labels.cpu().numpy()
    if len(ticks) != len(x):
        raise ValueError(f"{len(x)} labels for {len(ticks)} sample ticks of a {full_len}-frame video")
    out = np.zeros(full_len, dtype=np.int64)
    out[: ticks[0]] = x[0]
    if len(ticks) == 1:
        out[ticks[0] :] = x[0]
    else:
        dense = np.arange(ticks[0], ticks[-1] + 1)
        out[ticks[0] : ticks[-1] + 1] = interp1d(ticks, x, kind="nearest")(dense).astype(np.int64)
        out[ticks[-1] + 1 :] = x[-1]
    return torch.from_numpy(out).to(labels.device)


def labels_to_segments(labels: torch.Tensor, fps: float, sample_rate: int = 1) -> Segments:
    """Every run of ``labels (T,)`` as a :class:`~tal.core.types.Segments` in seconds
    (frame ``t`` covers ``[t, t + 1) * sample_rate / fps``)."""
    seg = segments_of(labels)
    scale = sample_rate / fps
    bounds = torch.stack([seg.starts, seg.ends], 1).double() * scale
    return Segments(bounds, seg.labels)
