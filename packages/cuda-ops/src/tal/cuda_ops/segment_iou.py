"""Temporal IoU of 1-D segments: pairwise ``(N, 2) x (M, 2) -> (N, M)`` and matched ``(N, 2), (N, 2) -> (N,)``.

Definition (all backends, computed in float32, or float64 for float64 inputs,
and returned in the promoted input dtype)::

    len = max(end - start, 0)
    inter = max(min(end_a, end_b) - max(start_a, start_b), 0)
    union = len_a + len_b - inter
    iou = inter / union   if union > 0
          0               otherwise (zero-length or inverted segments)

NaN coordinates give NaN. The ops are not differentiable.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _backend
from ._utils import check_segments, compute_dtype, plain_eager, result_dtype

__all__ = ["segment_iou", "segment_iou_matched", "segment_iou_matched_reference", "segment_iou_reference"]


def _iou_from_parts(inter: Tensor, union: Tensor) -> Tensor:
    zero = torch.zeros((), dtype=union.dtype, device=union.device)
    return torch.where(union > 0, inter / union, torch.where(torch.isnan(union), union, zero))


def segment_iou_reference(a: Tensor, b: Tensor) -> Tensor:
    """Pure-torch pairwise IoU (vectorized); ``(N, 2), (M, 2) -> (N, M)``."""
    out_dtype = result_dtype(a, b)
    cdt = compute_dtype(out_dtype)
    a = a.to(cdt)
    b = b.to(cdt)
    len_a = (a[:, 1] - a[:, 0]).clamp(min=0)
    len_b = (b[:, 1] - b[:, 0]).clamp(min=0)
    inter = (torch.minimum(a[:, None, 1], b[None, :, 1]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    union = len_a[:, None] + len_b[None, :] - inter
    return _iou_from_parts(inter, union).to(out_dtype)


def segment_iou_matched_reference(a: Tensor, b: Tensor) -> Tensor:
    """Pure-torch IoU of matched pairs; ``(N, 2), (N, 2) -> (N,)``."""
    out_dtype = result_dtype(a, b)
    cdt = compute_dtype(out_dtype)
    a = a.to(cdt)
    b = b.to(cdt)
    len_a = (a[:, 1] - a[:, 0]).clamp(min=0)
    len_b = (b[:, 1] - b[:, 0]).clamp(min=0)
    inter = (torch.minimum(a[:, 1], b[:, 1]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    union = len_a + len_b - inter
    return _iou_from_parts(inter, union).to(out_dtype)


def _prepare(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, torch.dtype]:
    out_dtype = result_dtype(a, b)
    cdt = compute_dtype(out_dtype)
    return a.to(cdt).contiguous(), b.to(cdt).contiguous(), out_dtype


def segment_iou_ext(a: Tensor, b: Tensor) -> Tensor:
    """The C++ CPU kernel (requires the compiled library)."""
    ca, cb, out_dtype = _prepare(a, b)
    return torch.ops.tal_ops_ext.segment_iou(ca, cb).to(out_dtype)


def segment_iou_matched_ext(a: Tensor, b: Tensor) -> Tensor:
    """The C++ CPU kernel (requires the compiled library)."""
    ca, cb, out_dtype = _prepare(a, b)
    return torch.ops.tal_ops_ext.segment_iou_matched(ca, cb).to(out_dtype)


# ----------------------------------------------------------------- torch.library


def _segment_iou_kernel(a: Tensor, b: Tensor) -> Tensor:
    if a.device.type == "cpu" and _backend.use_ext("segment_iou"):
        return segment_iou_ext(a, b)
    tri = _backend.triton_module() if a.device.type == "cuda" else None
    if tri is not None:
        ca, cb, out_dtype = _prepare(a, b)
        return tri.segment_iou(ca, cb).to(out_dtype)
    return segment_iou_reference(a, b)


_segment_iou_op = torch.library.custom_op("tal_ops::segment_iou", _segment_iou_kernel, mutates_args=())


@_segment_iou_op.register_fake
def _segment_iou_fake(a: Tensor, b: Tensor) -> Tensor:
    return a.new_empty((a.shape[0], b.shape[0]), dtype=result_dtype(a, b))


def _segment_iou_matched_kernel(a: Tensor, b: Tensor) -> Tensor:
    if a.device.type == "cpu" and _backend.use_ext("segment_iou_matched"):
        return segment_iou_matched_ext(a, b)
    tri = _backend.triton_module() if a.device.type == "cuda" else None
    if tri is not None:
        ca, cb, out_dtype = _prepare(a, b)
        return tri.segment_iou_matched(ca, cb).to(out_dtype)
    return segment_iou_matched_reference(a, b)


_segment_iou_matched_op = torch.library.custom_op(
    "tal_ops::segment_iou_matched", _segment_iou_matched_kernel, mutates_args=()
)


@_segment_iou_matched_op.register_fake
def _segment_iou_matched_fake(a: Tensor, b: Tensor) -> Tensor:
    return a.new_empty((a.shape[0],), dtype=result_dtype(a, b))


# -------------------------------------------------------------------- public API


def segment_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise temporal IoU.

    Args:
        a: ``(N, 2)`` segments ``(start, end)``.
        b: ``(M, 2)`` segments.

    Returns:
        ``(N, M)`` IoU in the promoted dtype of ``a`` and ``b``; 0 for
        zero-length or inverted segments, NaN where a coordinate is NaN.
    """
    check_segments(a, "a")
    check_segments(b, "b")
    op = _segment_iou_kernel if plain_eager(a, b) else torch.ops.tal_ops.segment_iou
    return op(a, b)


def segment_iou_matched(a: Tensor, b: Tensor) -> Tensor:
    """Temporal IoU of matched pairs ``a[i]``, ``b[i]``.

    Args:
        a: ``(N, 2)`` segments.
        b: ``(N, 2)`` segments.

    Returns:
        ``(N,)`` IoU, same conventions as :func:`segment_iou`.
    """
    check_segments(a, "a")
    check_segments(b, "b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must hold the same number of segments, got {a.shape[0]} and {b.shape[0]}")
    op = _segment_iou_matched_kernel if plain_eager(a, b) else torch.ops.tal_ops.segment_iou_matched
    return op(a, b)
