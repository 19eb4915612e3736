"""1-D NMS (``nms_1d``) and soft-NMS (``soft_nms_1d``) with ActionFormer's semantics.

Both follow ActionFormer's C++ loops (``libs/utils/csrc/nms_cpu.cpp`` of
happyharrycn/actionformer_release) exactly, in float32 (float64 for float64
inputs):

* overlap: ``area = (x2 - x1) + 1e-6``, ``ovr = inter / (area_i + area_j - inter)``
  (0 instead of NaN when the denominator is not positive, which only happens
  for inverted segments);
* hard NMS visits candidates in ``torch.sort(scores, descending=True)`` order
  (ties as the CPU sort orders them) and drops those with ``ovr >= iou_threshold``;
* soft-NMS repeatedly selects the *first* maximum among the remaining
  candidates, swaps it to the front, decays the later ones (Gaussian:
  ``exp(-ovr**2 / sigma)``; linear: ``1 - ovr`` if ``ovr >= iou_threshold``;
  hard: 0 if ``ovr >= iou_threshold``) and removes any that fall below
  ``min_score`` by moving the last remaining candidate into its slot. That
  swap order decides ties and is reproduced exactly. (The first selected
  candidate is kept even if its score is below ``min_score``, as in the
  original.)
"""

from __future__ import annotations

from torch import Tensor

from . import _ops
from ._checks import SOFT_NMS_METHODS, check_method, check_segments_and_scores, soft_nms_method_code

__all__ = ["SOFT_NMS_METHODS", "nms_1d", "soft_nms_1d"]


def nms_1d(segs: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy 1-D NMS (ActionFormer's ``nms_1d_cpu``).

    Args:
        segs: ``(N, 2)`` segments.
        scores: ``(N,)`` scores (NaN raises ``ValueError``).
        iou_threshold: a candidate overlapping a kept one with ``ovr >= iou_threshold`` is dropped.

    Returns:
        ``(K,)`` int64 indices of the kept segments, highest score first.
    """
    check_segments_and_scores(segs, scores)
    return _ops.call("nms_1d", segs, scores, float(iou_threshold))


def soft_nms_1d(
    segs: Tensor,
    scores: Tensor,
    iou_threshold: float = 0.1,
    sigma: float = 0.5,
    min_score: float = 0.001,
    method: str = "gaussian",
) -> tuple[Tensor, Tensor]:
    """Soft-NMS (ActionFormer's ``softnms_1d_cpu``).

    Args:
        segs: ``(N, 2)`` segments.
        scores: ``(N,)`` scores (NaN raises ``ValueError``).
        iou_threshold: overlap from which ``linear``/``hard`` decay applies (unused by ``gaussian``).
        sigma: Gaussian width, weight ``exp(-ovr**2 / sigma)``.
        min_score: candidates whose decayed score falls below it are discarded.
        method: ``"gaussian"``, ``"linear"`` or ``"hard"``.

    Returns:
        ``(keep, new_scores)``: ``(K,)`` int64 indices in selection order and
        ``(K,)`` scores at selection (after decay).
    """
    check_segments_and_scores(segs, scores)
    code = soft_nms_method_code(method)
    check_method(code, sigma)
    return _ops.call("soft_nms_1d", segs, scores, float(iou_threshold), float(sigma), float(min_score), code)
