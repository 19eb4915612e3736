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

from torch import Tensor

from . import _ops
from ._checks import check_segments

__all__ = ["segment_iou", "segment_iou_matched"]


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
    return _ops.call("segment_iou", a, b)


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
    return _ops.call("segment_iou_matched", a, b)
