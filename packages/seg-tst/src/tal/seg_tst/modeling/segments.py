"""Segments of a frame-label sequence and the vectorized segment operations TST needs.

A *segment* is a maximal run of one label. Everything here is a handful of tensor ops whatever the
number of segments (the release loops over segments and frames in Python, which dominates its
refiner's time when a backbone over-segments).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Segmentation:
    """The runs of a ``(T,)`` label sequence.

    Attributes:
        frame_segment: ``(T,)`` int64, index of the segment each frame belongs to.
        starts: ``(S,)`` int64 first frame of each segment.
        ends: ``(S,)`` int64 one past the last frame.
        labels: ``(S,)`` int64 label of each segment.
    """

    frame_segment: torch.Tensor
    starts: torch.Tensor
    ends: torch.Tensor
    labels: torch.Tensor

    @property
    def num_segments(self) -> int:
        return int(self.starts.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.frame_segment.shape[0])

    @property
    def lengths(self) -> torch.Tensor:
        """``(S,)`` frames per segment."""
        return self.ends - self.starts


def segments_of(labels: torch.Tensor) -> Segmentation:
    """The runs of ``labels (T,)`` (``T >= 1``)."""
    labels = labels.reshape(-1).long()
    if labels.numel() == 0:
        raise ValueError("a label sequence of 0 frames has no segments")
    change = labels[1:] != labels[:-1]
    frame_segment = torch.cat([labels.new_zeros(1), torch.cumsum(change, 0)])
    starts = torch.cat([labels.new_zeros(1), torch.nonzero(change).reshape(-1) + 1])
    ends = torch.cat([starts[1:], labels.new_full((1,), labels.numel())])
    return Segmentation(frame_segment, starts, ends, labels[starts])


def segment_mean(features: torch.Tensor, seg: Segmentation) -> torch.Tensor:
    """Mean of ``features (T, C)`` over each segment's frames → ``(S, C)`` (without autograd: one
    sparse-dense product with the ``(S, T)`` averaging matrix)."""
    lengths = seg.lengths.to(features.dtype)
    if torch.is_grad_enabled() and features.requires_grad:
        sums = features.new_zeros(seg.num_segments, features.shape[1]).index_add(0, seg.frame_segment, features)
        return sums / lengths.unsqueeze(1)
    crow = torch.cat([seg.starts, seg.ends[-1:]])
    cols = torch.arange(seg.num_frames, device=features.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        size = (seg.num_segments, seg.num_frames)
        avg = torch.sparse_csr_tensor(crow, cols, (1 / lengths.float())[seg.frame_segment], size=size)
        with torch.autocast(features.device.type, enabled=False):  # CSR products are float32/64 only
            return (avg @ features.float()).to(features.dtype)


def neighbourhood_pairs(seg: Segmentation) -> tuple[torch.Tensor, torch.Tensor]:
    """The (segment, frame) pairs of TST's segment-frame cross-attention: segment ``s`` sees the frames
    of segments ``s - 1``, ``s`` and ``s + 1`` (those that exist).

    Returns ``pair_segment (P,)`` and ``pair_frame (P,)``, grouped by segment, frames increasing;
    ``P <= 3 T``.
    """
    n = seg.num_segments
    idx = torch.arange(n, device=seg.starts.device)
    lo = seg.starts[(idx - 1).clamp(min=0)]
    hi = seg.ends[(idx + 1).clamp(max=n - 1)]
    counts = hi - lo
    pair_segment = torch.repeat_interleave(idx, counts)
    first = torch.cumsum(counts, 0) - counts
    pair_frame = lo[pair_segment] + torch.arange(pair_segment.numel(), device=idx.device) - first[pair_segment]
    return pair_segment, pair_frame


def sparse_segment_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pair_segment: torch.Tensor,
    pair_frame: torch.Tensor,
    num_segments: int,
) -> torch.Tensor:
    """Softmax attention of segment queries over their own frames only.

    ``q (S, D)``, ``k (T, D)``, ``v (T, D_v)``; segment ``s`` attends to the frames ``pair_frame[p]`` with
    ``pair_segment[p] == s`` (logits ``q·k / sqrt(D)``) → ``(S, D_v)``. Equal to a dense ``(S, T)``
    softmax with ``-inf`` outside the pairs, in ``O(P · D)`` time and memory. Without autograd the
    pairs form a CSR matrix (pairs are grouped by segment, frames increasing): sampled matrix product
    for the logits, sparse-dense product for the output; with autograd, gathers and ``index_add``.
    """
    scale = 1.0 / float(np.sqrt(q.shape[-1]))
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        logits = (q[pair_segment] * k[pair_frame]).sum(-1) * scale
        peak = torch.full((num_segments,), float("-inf"), dtype=logits.dtype, device=logits.device)
        peak = peak.scatter_reduce(0, pair_segment, logits.detach(), reduce="amax")
        e = torch.exp(logits - peak[pair_segment])
        denom = e.new_zeros(num_segments).index_add(0, pair_segment, e)
        w = e / denom[pair_segment]
        out = v.new_zeros(num_segments, v.shape[1])
        return out.index_add(0, pair_segment, w.unsqueeze(1).to(v.dtype) * v[pair_frame])
    counts = torch.bincount(pair_segment, minlength=num_segments)
    crow = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    size = (num_segments, k.shape[0])
    with warnings.catch_warnings(), torch.autocast(q.device.type, enabled=False):
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        qf, kf = q.float(), k.float()  # CSR products are float32/64 only (bf16 under autocast is upcast)
        pattern = torch.sparse_csr_tensor(crow, pair_frame, qf.new_zeros(pair_frame.numel()), size=size)
        logits = torch.sparse.sampled_addmm(pattern, qf, kf.T).values() * scale
        peak = torch.segment_reduce(logits, "max", lengths=counts)
        e = torch.exp(logits - peak.repeat_interleave(counts))
        w = e / torch.segment_reduce(e, "sum", lengths=counts).repeat_interleave(counts)
        return (torch.sparse_csr_tensor(crow, pair_frame, w, size=size) @ v.float()).to(v.dtype)


def paint(seg: Segmentation, segment_values: torch.Tensor) -> torch.Tensor:
    """Frame values ``(T, ...)`` from per-segment values ``(S, ...)``: every frame takes its segment's."""
    return segment_values[seg.frame_segment]


def sinusoid_table(n_position: int, dim: int, device: torch.device | str | None = None) -> torch.Tensor:
    """TST's positional encoding ``(n_position, dim)`` float32: angle ``pos / 10000^(2 (j // 2) / dim)``,
    ``sin`` at even ``j``, ``cos`` at odd ``j`` (computed in float64, as the release's NumPy table)."""
    pos = torch.arange(n_position, dtype=torch.float64, device=device).unsqueeze(1)
    pairs = torch.arange((dim + 1) // 2, dtype=torch.float64, device=device)
    angles = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=device), 2 * pairs / dim)
    table = torch.stack([torch.sin(angles), torch.cos(angles)], dim=2).reshape(n_position, -1)
    return table[:, :dim].float()


def near_boundaries(seg: Segmentation, margin: int) -> torch.Tensor:
    """``(T,)`` bool: frames within ``[b - margin, b + margin)`` of an inner segment boundary ``b``."""
    t_len = seg.num_frames
    marks = torch.zeros(t_len + 1, dtype=torch.int64, device=seg.starts.device)
    inner = seg.starts[1:]
    if inner.numel() == 0 or margin == 0:
        return torch.zeros(t_len, dtype=torch.bool, device=seg.starts.device)
    marks.index_add_(0, (inner - margin).clamp(min=0), torch.ones_like(inner))
    marks.index_add_(0, (inner + margin).clamp(max=t_len), -torch.ones_like(inner))
    return torch.cumsum(marks, 0)[:t_len] > 0
