"""ActionFormer's post-processing NMS (``libs/utils/nms.py::batched_nms``) as one op.

Semantics (checked against a pure-Python oracle in the tests):

* ``multiclass``: classes in ascending label order, each class's candidates in
  their input order; soft-NMS (or hard NMS) per class, each class capped at
  ``max_seg_num``. Otherwise one class-agnostic pass.
* hard NMS first drops ``scores <= min_score`` (when ``min_score > 0``) and
  visits a class in ``torch.sort(descending=True)`` order; its scores are
  unchanged. Soft-NMS keeps decayed scores (see :mod:`tal.cuda_ops.nms`).
* score voting of boundaries, only for class-agnostic NMS with
  ``voting_thresh > 0`` (ActionFormer disables it for multiclass NMS): each kept
  segment becomes the average of all *input* segments with
  ``iou >= voting_thresh``, weighted by ``score * iou``.
* finally all results are sorted with ``torch.sort(scores, descending=True)``
  (on CPU, so tied scores come out in the same order as in ActionFormer) and
  cut to ``max_seg_num``.

Deviations, only for degenerate inputs: a zero-length segment gives IoU 0 in
voting (ActionFormer divides 0 by 0 and returns NaN boundaries), NaN scores or
coordinates raise ``ValueError``, ``max_seg_num < 0`` raises ``ValueError``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _ops
from ._checks import check_method, check_segments, soft_nms_method_code

__all__ = ["batched_nms"]


def batched_nms(
    segs: Tensor,
    scores: Tensor,
    labels: Tensor,
    iou_threshold: float,
    min_score: float,
    max_seg_num: int,
    use_soft_nms: bool = True,
    multiclass: bool = True,
    sigma: float = 0.5,
    voting_thresh: float = 0.75,
    *,
    soft_nms_method: str = "gaussian",
) -> tuple[Tensor, Tensor, Tensor]:
    """ActionFormer's batched (soft-)NMS with score voting.

    Args:
        segs: ``(N, 2)`` candidate segments.
        scores: ``(N,)`` scores (NaN raises ``ValueError``).
        labels: ``(N,)`` integer class labels.
        iou_threshold: hard-NMS threshold (and linear soft-NMS threshold).
        min_score: soft-NMS drops candidates decayed below it; hard NMS drops ``scores <= min_score``.
        max_seg_num: cap per class and on the final output (``>= 0``).
        use_soft_nms: soft-NMS (default, Gaussian as in ActionFormer) or hard NMS.
        multiclass: NMS within each class (default) or across classes.
        sigma: Gaussian soft-NMS width.
        voting_thresh: score voting of boundaries (class-agnostic NMS only), off when ``<= 0``.
        soft_nms_method: decay used when ``use_soft_nms``; ActionFormer always uses ``"gaussian"``.

    Returns:
        ``(segs (K, 2), scores (K,), labels (K,))`` sorted by descending score, ``K <= max_seg_num``.
    """
    check_segments(segs, "segs")
    if scores.dim() != 1 or scores.shape[0] != segs.shape[0]:
        raise ValueError(f"scores must have shape ({segs.shape[0]},), got {tuple(scores.shape)}")
    if labels.dim() != 1 or labels.shape[0] != segs.shape[0]:
        raise ValueError(f"labels must have shape ({segs.shape[0]},), got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got {labels.dtype}")
    if not (segs.dtype.is_floating_point and scores.dtype.is_floating_point):
        raise TypeError(f"segs and scores must be floating point, got {segs.dtype} and {scores.dtype}")
    method = soft_nms_method_code(soft_nms_method, "soft_nms_method")
    if int(max_seg_num) < 0:
        raise ValueError(f"max_seg_num must be >= 0, got {max_seg_num}")
    if use_soft_nms:
        check_method(method, sigma)
    return _ops.call(
        "batched_nms",
        segs,
        scores,
        labels,
        float(iou_threshold),
        float(min_score),
        int(max_seg_num),
        bool(use_soft_nms),
        bool(multiclass),
        float(sigma),
        float(voting_thresh),
        method,
    )
