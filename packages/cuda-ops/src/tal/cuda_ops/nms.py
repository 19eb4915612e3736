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

The module also holds the grouped primitives every backend provides
(``soft_nms_grouped``, ``hard_nms_grouped``; ``seg_voting`` is in
``batched_nms``), with their pure-torch references.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from . import _backend
from ._utils import check_finite_inputs, check_segments, compute_dtype, plain_eager, sort_desc

__all__ = [
    "SOFT_NMS_METHODS",
    "hard_nms_grouped_reference",
    "nms_1d",
    "soft_nms_1d",
    "soft_nms_grouped_reference",
]

#: Soft-NMS decay functions and their codes (ActionFormer's ``method`` argument).
SOFT_NMS_METHODS = {"hard": 0, "linear": 1, "gaussian": 2}


# ------------------------------------------------------------------ references


def _groups(offsets: Tensor) -> list[int]:
    return [int(v) for v in offsets.tolist()]


def _padded(values: Tensor, off: list[int], fill: float | int) -> tuple[Tensor, Tensor]:
    """(G, L) padded view of a group-sorted 1-D tensor, and the validity mask."""
    device = values.device
    counts = torch.tensor([off[g + 1] - off[g] for g in range(len(off) - 1)], device=device)
    width = int(counts.max()) if counts.numel() else 0
    pos = torch.arange(width, device=device)
    valid = pos[None, :] < counts[:, None]
    starts = torch.tensor(off[:-1], device=device)
    src = (starts[:, None] + pos[None, :]).clamp(max=max(values.shape[0] - 1, 0))
    out = values[src] if values.shape[0] else values.new_full(valid.shape, fill)
    return torch.where(valid, out, torch.as_tensor(fill, dtype=values.dtype, device=device)), valid


def _af_overlap(ix1: Tensor, ix2: Tensor, ia: Tensor, x1: Tensor, x2: Tensor, area: Tensor) -> Tensor:
    lo = torch.where(ix1 < x1, x1, ix1)
    hi = torch.where(x2 < ix2, x2, ix2)
    d = hi - lo
    zero = torch.zeros((), dtype=d.dtype, device=d.device)
    inter = torch.where(zero < d, d, zero)
    den = ia + area - inter
    return torch.where(den > 0, inter / den, zero)


def soft_nms_grouped_reference(
    segs: Tensor,
    scores: Tensor,
    offsets: Tensor,
    iou_threshold: float,
    sigma: float,
    min_score: float,
    method: int,
    max_num: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Soft-NMS of every group at once (one row per group, vectorized over groups).

    Args:
        segs: ``(N, 2)`` segments sorted by group; scores: ``(N,)``.
        offsets: ``(G + 1,)`` int64 group boundaries (CPU).

    Returns:
        ``(ids, scores, counts)``: positions into ``segs`` in selection order,
        group after group; the score of each at its selection; kept per group
        (capped at ``max_num`` when ``max_num > 0``).
    """
    device, dt = segs.device, segs.dtype
    off = _groups(offsets)
    G = len(off) - 1
    if G <= 0 or segs.shape[0] == 0:
        return (
            torch.zeros(0, dtype=torch.int64, device=device),
            scores.new_zeros(0),
            torch.zeros(max(G, 0), dtype=torch.int64, device=device),
        )
    gid = torch.arange(segs.shape[0], device=device)
    x1, valid = _padded(segs[:, 0], off, 0.0)
    x2, _ = _padded(segs[:, 1], off, 0.0)
    sc, _ = _padded(scores, off, 0.0)
    ident, _ = _padded(gid, off, 0)
    area = (x2 - x1) + 1e-6
    L = x1.shape[1]
    pos = torch.arange(L, device=device)[None, :]
    rows = torch.arange(G, device=device)
    n = valid.sum(1)
    out_id = torch.zeros((G, L), dtype=torch.int64, device=device)
    out_sc = torch.zeros((G, L), dtype=dt, device=device)
    neg_inf = torch.tensor(-math.inf, dtype=dt, device=device)
    zero = torch.zeros((), dtype=dt, device=device)
    for i in range(L):
        active = n > i
        if not bool(active.any()):
            break
        # first maximum among positions [i, n)
        cand = (pos >= i) & (pos < n[:, None])
        best = torch.where(cand, sc, neg_inf).amax(1)
        mp = torch.where(cand & (sc == best[:, None]), pos, L).amin(1)
        mp = torch.where(active, mp, torch.full_like(mp, i))
        perm = pos.expand(G, L).clone()
        perm[rows, mp] = i
        perm[rows, i] = mp
        x1, x2, area, sc, ident = (t.gather(1, perm) for t in (x1, x2, area, sc, ident))
        out_id[:, i] = ident[:, i]
        out_sc[:, i] = sc[:, i]
        # decay the later candidates
        ovr = _af_overlap(x1[:, i : i + 1], x2[:, i : i + 1], area[:, i : i + 1], x1, x2, area)
        upd = (pos > i) & (pos < n[:, None])
        if method == 2:
            arg = -(ovr * ovr) / sigma
            weight = torch.exp(arg.double()).to(dt)
            sc = torch.where(upd & (ovr > 0), sc * weight, sc)
        elif method == 1:
            sc = torch.where(upd & (ovr >= iou_threshold), sc * (1 - ovr), sc)
        else:
            sc = torch.where(upd & (ovr >= iou_threshold), sc * zero, sc)
        # drop candidates below min_score: each dropped slot (ascending) receives the
        # last remaining candidate, i.e. the surviving tail in descending position order
        doomed = upd & (sc < min_score)
        n_doomed = doomed.sum(1)
        if bool((n_doomed > 0).any()):
            n_new = n - n_doomed
            left = doomed & (pos < n_new[:, None])
            right = upd & ~doomed & (pos >= n_new[:, None])
            k_left = left.long().cumsum(1) - 1
            k_right = right.long().flip(1).cumsum(1).flip(1) - 1
            table = torch.zeros((G, L + 1), dtype=torch.int64, device=device)
            table.scatter_(1, torch.where(right, k_right, L), pos.expand(G, L).contiguous())
            src = torch.where(left, table.gather(1, k_left.clamp(min=0)), pos.expand(G, L))
            x1, x2, area, sc, ident = (t.gather(1, src) for t in (x1, x2, area, sc, ident))
            n = n_new
    counts = n.clamp(max=max_num) if max_num > 0 else n
    keep = pos < counts[:, None]
    return out_id[keep], out_sc[keep], counts


def hard_nms_grouped_reference(segs: Tensor, order: Tensor, offsets: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS of every group at once; returns a uint8 keep mask aligned with ``order``.

    Args:
        segs: ``(N, 2)`` segments; order: ``(L,)`` int64 indices into ``segs``,
            group after group, each group in visiting (descending score) order.
        offsets: ``(G + 1,)`` int64 group boundaries within ``order`` (CPU).
    """
    device = segs.device
    off = _groups(offsets)
    if order.numel() == 0:
        return torch.zeros(0, dtype=torch.uint8, device=device)
    x1, valid = _padded(segs[order, 0], off, 0.0)
    x2, _ = _padded(segs[order, 1], off, 0.0)
    area = (x2 - x1) + 1e-6
    keep = valid.clone()
    L = x1.shape[1]
    pos = torch.arange(L, device=device)[None, :]
    for i in range(L):
        alive = keep[:, i]
        if not bool(alive.any()):
            continue
        ovr = _af_overlap(x1[:, i : i + 1], x2[:, i : i + 1], area[:, i : i + 1], x1, x2, area)
        keep &= ~(alive[:, None] & (pos > i) & (ovr >= iou_threshold))
    return keep[valid].to(torch.uint8)


# ----------------------------------------------------------- backend selection

REFERENCE_KERNELS = SimpleNamespace(
    name=_backend.IMPL_REF,
    soft_nms_grouped=soft_nms_grouped_reference,
    hard_nms_grouped=hard_nms_grouped_reference,
)


def _ext_kernels() -> Any:
    ops = torch.ops.tal_ops_ext
    return SimpleNamespace(
        name=_backend.IMPL_EXT,
        soft_nms_grouped=ops.soft_nms_grouped,
        hard_nms_grouped=ops.hard_nms_grouped,
        seg_voting=ops.seg_voting,
    )


def nms_kernels(device: torch.device, op: str) -> Any:
    """The grouped NMS primitives serving ``device`` (see ``backend_info``)."""
    if device.type == "cpu" and _backend.use_ext(op):
        return _ext_kernels()
    if device.type == "cuda":
        tri = _backend.triton_module()
        if tri is not None:
            return SimpleNamespace(
                name=_backend.IMPL_TRITON,
                soft_nms_grouped=tri.soft_nms_grouped,
                hard_nms_grouped=tri.hard_nms_grouped,
                seg_voting=tri.seg_voting,
            )
    from .batched_nms import seg_voting_reference

    return SimpleNamespace(**vars(REFERENCE_KERNELS), seg_voting=seg_voting_reference)


# ------------------------------------------------------------------ op bodies


def _single_group(n: int) -> Tensor:
    return torch.tensor([0, n], dtype=torch.int64)


def nms_1d_impl(segs: Tensor, scores: Tensor, iou_threshold: float, kernels: Any) -> Tensor:
    """Hard NMS body shared by all backends; returns kept indices, highest score first."""
    check_finite_inputs(segs, scores)
    n = segs.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=segs.device)
    cdt = compute_dtype(torch.promote_types(segs.dtype, scores.dtype))
    s = segs.to(cdt).contiguous()
    order = sort_desc(scores.to(cdt))
    keep = kernels.hard_nms_grouped(s, order, _single_group(n), float(iou_threshold))
    return order[keep.bool()]


def soft_nms_1d_impl(
    segs: Tensor,
    scores: Tensor,
    iou_threshold: float,
    sigma: float,
    min_score: float,
    method: int,
    kernels: Any,
) -> tuple[Tensor, Tensor]:
    """Soft-NMS body shared by all backends; returns (indices in selection order, their scores)."""
    _check_method(method, sigma)
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


def _check_method(method: int, sigma: float) -> None:
    if method not in (0, 1, 2):
        raise ValueError(f"method must be 0 (hard), 1 (linear) or 2 (gaussian), got {method}")
    if method == 2 and not sigma > 0:
        raise ValueError(f"sigma must be > 0 for Gaussian soft-NMS, got {sigma}")


# ----------------------------------------------------------------- torch.library


def _nms_1d_kernel(segs: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    return nms_1d_impl(segs, scores, iou_threshold, nms_kernels(segs.device, "nms_1d"))


_nms_1d_op = torch.library.custom_op("tal_ops::nms_1d", _nms_1d_kernel, mutates_args=())


@_nms_1d_op.register_fake
def _nms_1d_fake(segs: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    k = torch.library.get_ctx().new_dynamic_size()
    return segs.new_empty((k,), dtype=torch.int64)


def _soft_nms_1d_kernel(
    segs: Tensor, scores: Tensor, iou_threshold: float, sigma: float, min_score: float, method: int
) -> tuple[Tensor, Tensor]:
    return soft_nms_1d_impl(
        segs, scores, iou_threshold, sigma, min_score, method, nms_kernels(segs.device, "soft_nms_1d")
    )


_soft_nms_1d_op = torch.library.custom_op("tal_ops::soft_nms_1d", _soft_nms_1d_kernel, mutates_args=())


@_soft_nms_1d_op.register_fake
def _soft_nms_1d_fake(
    segs: Tensor, scores: Tensor, iou_threshold: float, sigma: float, min_score: float, method: int
) -> tuple[Tensor, Tensor]:
    k = torch.library.get_ctx().new_dynamic_size()
    return segs.new_empty((k,), dtype=torch.int64), scores.new_empty((k,))


# -------------------------------------------------------------------- public API


def _check_pair(segs: Tensor, scores: Tensor) -> None:
    check_segments(segs, "segs")
    if scores.dim() != 1 or scores.shape[0] != segs.shape[0]:
        raise ValueError(f"scores must have shape ({segs.shape[0]},), got {tuple(scores.shape)}")
    if not (segs.dtype.is_floating_point and scores.dtype.is_floating_point):
        raise TypeError(f"segs and scores must be floating point, got {segs.dtype} and {scores.dtype}")


def nms_1d(segs: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy 1-D NMS (ActionFormer's ``nms_1d_cpu``).

    Args:
        segs: ``(N, 2)`` segments.
        scores: ``(N,)`` scores (NaN raises ``ValueError``).
        iou_threshold: a candidate overlapping a kept one with ``ovr >= iou_threshold`` is dropped.

    Returns:
        ``(K,)`` int64 indices of the kept segments, highest score first.
    """
    _check_pair(segs, scores)
    op = _nms_1d_kernel if plain_eager(segs, scores) else torch.ops.tal_ops.nms_1d
    return op(segs, scores, float(iou_threshold))


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
    _check_pair(segs, scores)
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f"method must be one of {sorted(SOFT_NMS_METHODS)}, got {method!r}")
    code = SOFT_NMS_METHODS[method]
    _check_method(code, sigma)
    op = _soft_nms_1d_kernel if plain_eager(segs, scores) else torch.ops.tal_ops.soft_nms_1d
    return op(segs, scores, float(iou_threshold), float(sigma), float(min_score), code)
