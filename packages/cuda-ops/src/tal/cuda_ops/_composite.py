"""Op bodies built from a backend's kernel primitives, shared by every backend.

A compiled backend (C++ ``torch.ops.tal_ops_ext`` or Triton) provides the primitives named in
:mod:`tal.cuda_ops._reference` for contiguous float32/float64 inputs of one dtype. The functions here
turn a public op's arguments into those calls: dtype promotion and contiguity, the ActionFormer NMS
glue (sorting, grouping by class, caps, score voting, final ordering). ``tal.cuda_ops._backend``
binds them to the primitives of the implementation that serves a device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_finite_inputs, check_method
from ._reference import compute_dtype, result_dtype


@dataclass(frozen=True)
class NmsKernels:
    """The grouped NMS primitives of one implementation (contracts: see :mod:`tal.cuda_ops._reference`)."""

    name: str
    soft_nms_grouped: Callable[..., tuple[Tensor, Tensor, Tensor]]
    hard_nms_grouped: Callable[..., Tensor]
    seg_voting: Callable[..., Tensor]


def sort_desc(scores: Tensor) -> Tensor:
    """Indices sorting ``scores`` in descending order, ties as ``torch.sort`` on CPU orders them.

    ActionFormer sorts with the (unstable) CPU ``torch.sort``; doing the same on
    every device keeps the order of tied scores identical to it.
    """
    if scores.device.type == "cpu":
        return torch.sort(scores, descending=True).indices
    return torch.sort(scores.cpu(), descending=True).indices.to(scores.device)


# --------------------------------------------------------------------- IoU


def segment_iou(a: Tensor, b: Tensor, *, primitive: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Pairwise or matched IoU through a compiled ``primitive``, returned in the promoted dtype."""
    out_dtype = result_dtype(a, b)
    cdt = compute_dtype(out_dtype)
    return primitive(a.to(cdt).contiguous(), b.to(cdt).contiguous()).to(out_dtype)


# ------------------------------------------------------------------- graph


def _graph_args(tensors: Sequence[Tensor], keeps_half: bool) -> list[Tensor]:
    if keeps_half and tensors[0].dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        return [t.contiguous() for t in tensors]
    cdt = compute_dtype(tensors[0].dtype)
    return [t.to(cdt).contiguous() for t in tensors]


def graph_forward(
    x: Tensor, A: Tensor, sum_subsets: bool, *, primitive: Callable[..., Tensor], keeps_half: bool
) -> Tensor:
    """A graph aggregation forward primitive on prepared inputs (``keeps_half``: it takes float16/bfloat16)."""
    return primitive(*_graph_args((x, A), keeps_half), sum_subsets).to(x.dtype)


def graph_backward(
    grad: Tensor,
    x: Tensor,
    A: Tensor,
    sum_subsets: bool,
    need_x: bool,
    need_A: bool,
    *,
    primitive: Callable[..., tuple[Tensor, Tensor]],
    keeps_half: bool,
) -> tuple[Tensor, Tensor]:
    """A graph aggregation backward primitive on prepared inputs; gradients in the dtypes of ``x`` and ``A``."""
    gx, gA = primitive(*_graph_args((grad, x, A), keeps_half), sum_subsets, need_x, need_A)
    return gx.to(x.dtype), gA.to(A.dtype)


# --------------------------------------------------------------------- NMS


def _single_group(n: int) -> Tensor:
    return torch.tensor([0, n], dtype=torch.int64)


def nms_1d(segs: Tensor, scores: Tensor, iou_threshold: float, *, kernels: NmsKernels) -> Tensor:
    """Hard NMS; returns kept indices, highest score first."""
    check_finite_inputs(segs, scores)
    n = segs.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=segs.device)
    cdt = compute_dtype(torch.promote_types(segs.dtype, scores.dtype))
    s = segs.to(cdt).contiguous()
    order = sort_desc(scores.to(cdt))
    keep = kernels.hard_nms_grouped(s, order, _single_group(n), float(iou_threshold))
    return order[keep.bool()]


def soft_nms_1d(
    segs: Tensor,
    scores: Tensor,
    iou_threshold: float,
    sigma: float,
    min_score: float,
    method: int,
    *,
    kernels: NmsKernels,
) -> tuple[Tensor, Tensor]:
    """Soft-NMS; returns (indices in selection order, their scores at selection)."""
    check_method(method, sigma)
    check_finite_inputs(segs, scores)
    n = segs.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=segs.device), scores.new_zeros(0)
    cdt = compute_dtype(torch.promote_types(segs.dtype, scores.dtype))
    s = segs.to(cdt).contiguous()
    c = scores.to(cdt).contiguous()
    ids, new_scores, _ = kernels.soft_nms_grouped(
        s, c, _single_group(n), float(iou_threshold), float(sigma), float(min_score), int(method), 0
    )
    return ids, new_scores.to(scores.dtype)


def batched_nms(
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
    *,
    kernels: NmsKernels,
) -> tuple[Tensor, Tensor, Tensor]:
    """ActionFormer's batched NMS (semantics: :mod:`tal.cuda_ops.batched_nms`)."""
    if max_seg_num < 0:
        raise ValueError(f"max_seg_num must be >= 0, got {max_seg_num}")
    if use_soft_nms:
        check_method(method, sigma)
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
    # parallel kernel whose OpenMP barrier can stall on a busy machine.
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
