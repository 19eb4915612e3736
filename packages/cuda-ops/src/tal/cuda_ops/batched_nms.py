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

from typing import Any

import torch
from torch import Tensor

from ._utils import check_finite_inputs, check_segments, compute_dtype, plain_eager, sort_desc
from .nms import SOFT_NMS_METHODS, _check_method, nms_kernels

__all__ = ["batched_nms", "batched_nms_impl", "seg_voting_reference"]


def seg_voting_reference(nms_segs: Tensor, segs: Tensor, scores: Tensor, thr: float) -> Tensor:
    """Pure-torch score voting; ``(K, 2), (N, 2), (N,) -> (K, 2)`` (sums in float64)."""
    out = torch.empty_like(nms_segs)
    if nms_segs.shape[0] == 0:
        return out
    seg_len = segs[:, 1] - segs[:, 0]
    block = max(1, (1 << 22) // max(segs.shape[0], 1))
    zero = torch.zeros((), dtype=segs.dtype, device=segs.device)
    for start in range(0, nms_segs.shape[0], block):
        q = nms_segs[start : start + block]
        lo = torch.maximum(q[:, None, 0], segs[None, :, 0])
        hi = torch.minimum(q[:, None, 1], segs[None, :, 1])
        inter = (hi - lo).clamp(min=0)
        den = (q[:, 1] - q[:, 0])[:, None] + seg_len[None, :] - inter
        iou = torch.where(den != 0, inter / den, zero)
        weight = torch.where(iou >= thr, scores[None, :] * iou, zero).double()
        total = weight.sum(1, keepdim=True)
        voted = (weight @ segs.double()) / total
        out[start : start + block] = torch.where(total != 0, voted, q.double()).to(segs.dtype)
    return out


def batched_nms_impl(
    segs: Tensor,
    scores: Tensor,
    labels: Tensor,
    iou_threshold: float,
    min_score: float,
    max_seg_num: int,
    use_soft_nms: bool,
    multiclass: bool,
    sigma: float,
    voting_thresh: float,
    method: int,
    kernels: Any,
) -> tuple[Tensor, Tensor, Tensor]:
    """The op body, shared by every backend (``kernels`` supplies the grouped primitives)."""
    if max_seg_num < 0:
        raise ValueError(f"max_seg_num must be >= 0, got {max_seg_num}")
    if use_soft_nms:
        _check_method(method, sigma)
    check_finite_inputs(segs, scores)
    n = segs.shape[0]
    device = segs.device
    if n == 0:
        return segs.new_zeros((0, 2)), scores.new_zeros((0,)), labels.new_zeros((0,))
    cdt = compute_dtype(torch.promote_types(segs.dtype, scores.dtype))
    s = segs.to(cdt).contiguous()
    c = scores.to(cdt).contiguous()
    if multiclass:
        perm = torch.sort(labels, stable=True).indices
        _, counts = torch.unique_consecutive(labels.index_select(0, perm), return_counts=True)
        offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).cpu()
    else:
        perm = torch.arange(n, device=device)
        offsets = torch.tensor([0, n], dtype=torch.int64)
    # index_select rather than advanced indexing: for small 2-D gathers the latter goes through a
    # parallel kernel whose OpenMP barrier costs milliseconds on a busy machine.
    sp = s.index_select(0, perm)
    cp = c.index_select(0, perm)
    if use_soft_nms:
        ids, new_scores, _ = kernels.soft_nms_grouped(
            sp, cp, offsets, float(iou_threshold), float(sigma), float(min_score), int(method), int(max_seg_num)
        )
        kept = perm.index_select(0, ids)
    else:
        # Per class: drop scores <= min_score (if min_score > 0), visit in sorted order.
        off = [int(v) for v in offsets.tolist()]
        orders = []
        bounds = [0]
        for g in range(len(off) - 1):
            local = torch.arange(off[g], off[g + 1], device=device)
            group_scores = cp[off[g] : off[g + 1]]
            if min_score > 0:
                mask = group_scores > min_score
                local, group_scores = local[mask], group_scores[mask]
            orders.append(local[sort_desc(group_scores)])
            bounds.append(bounds[-1] + orders[-1].shape[0])
        order = torch.cat(orders)
        keep = kernels.hard_nms_grouped(sp, order, torch.tensor(bounds, dtype=torch.int64), float(iou_threshold))
        keep = keep.bool()
        if max_seg_num > 0:  # per-class cap, in visiting order
            rank = torch.zeros_like(order)
            for g in range(len(bounds) - 1):
                rank[bounds[g] : bounds[g + 1]] = keep[bounds[g] : bounds[g + 1]].long().cumsum(0)
            keep &= rank <= max_seg_num
        kept = perm.index_select(0, order[keep])
        new_scores = c.index_select(0, kept)
    new_segs = s.index_select(0, kept)
    new_labels = labels.index_select(0, kept)
    if not multiclass and voting_thresh > 0 and new_segs.shape[0] > 0:
        new_segs = kernels.seg_voting(new_segs.contiguous(), s, c, float(voting_thresh))
    idx = sort_desc(new_scores)[: min(int(max_seg_num), new_scores.shape[0])]
    return (
        new_segs.index_select(0, idx).to(segs.dtype),
        new_scores.index_select(0, idx).to(scores.dtype),
        new_labels.index_select(0, idx),
    )


# ----------------------------------------------------------------- torch.library


def _batched_nms_kernel(
    segs: Tensor,
    scores: Tensor,
    labels: Tensor,
    iou_threshold: float,
    min_score: float,
    max_seg_num: int,
    use_soft_nms: bool,
    multiclass: bool,
    sigma: float,
    voting_thresh: float,
    method: int,
) -> tuple[Tensor, Tensor, Tensor]:
    return batched_nms_impl(
        segs,
        scores,
        labels,
        iou_threshold,
        min_score,
        max_seg_num,
        use_soft_nms,
        multiclass,
        sigma,
        voting_thresh,
        method,
        nms_kernels(segs.device, "batched_nms"),
    )


_batched_nms_op = torch.library.custom_op("tal_ops::batched_nms", _batched_nms_kernel, mutates_args=())


@_batched_nms_op.register_fake
def _batched_nms_fake(
    segs: Tensor,
    scores: Tensor,
    labels: Tensor,
    iou_threshold: float,
    min_score: float,
    max_seg_num: int,
    use_soft_nms: bool,
    multiclass: bool,
    sigma: float,
    voting_thresh: float,
    method: int,
) -> tuple[Tensor, Tensor, Tensor]:
    k = torch.library.get_ctx().new_dynamic_size()
    return segs.new_empty((k, 2)), scores.new_empty((k,)), labels.new_empty((k,))


# -------------------------------------------------------------------- public API


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
    if soft_nms_method not in SOFT_NMS_METHODS:
        raise ValueError(f"soft_nms_method must be one of {sorted(SOFT_NMS_METHODS)}, got {soft_nms_method!r}")
    if int(max_seg_num) < 0:
        raise ValueError(f"max_seg_num must be >= 0, got {max_seg_num}")
    method = SOFT_NMS_METHODS[soft_nms_method]
    if use_soft_nms:
        _check_method(method, sigma)
    op = _batched_nms_kernel if plain_eager(segs, scores, labels) else torch.ops.tal_ops.batched_nms
    return op(
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
