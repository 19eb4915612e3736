"""Pure-torch references of every kernel primitive (a leaf module: it imports only torch).

They define the semantics the C++ (``torch.ops.tal_ops_ext``) and Triton (``tal.cuda_ops._triton``)
kernels reproduce, and they run wherever neither is available (any device). Each function has the
name and contract of the matching compiled primitive, so a backend is simply a namespace of these
names:

* ``segment_iou``, ``segment_iou_matched``: temporal IoU;
* ``soft_nms_grouped``, ``hard_nms_grouped``, ``seg_voting``: ActionFormer's NMS loops over groups;
* ``graph_refined_fwd/bwd``, ``graph_shared_fwd/bwd``: skeleton graph aggregation and its gradient.

The references accept any floating dtype and layout (the compiled kernels need contiguous
float32/float64 inputs of one dtype; ``tal.cuda_ops._composite`` prepares those).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_EMPTY = (0,)


# ------------------------------------------------------------------ dtypes


def result_dtype(*tensors: Tensor) -> torch.dtype:
    """Promoted floating dtype of the inputs (integers give float32)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype if dtype.is_floating_point else torch.float32


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Every backend computes in float64 for float64 inputs and in float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# --------------------------------------------------------------------- IoU


def _iou_from_parts(inter: Tensor, union: Tensor) -> Tensor:
    zero = torch.zeros((), dtype=union.dtype, device=union.device)
    return torch.where(union > 0, inter / union, torch.where(torch.isnan(union), union, zero))


def _in_compute_dtype(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, torch.dtype]:
    out_dtype = result_dtype(a, b)
    cdt = compute_dtype(out_dtype)
    return a.to(cdt), b.to(cdt), out_dtype


def segment_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU (vectorized); ``(N, 2), (M, 2) -> (N, M)`` in the promoted dtype."""
    a, b, out_dtype = _in_compute_dtype(a, b)
    len_a = (a[:, 1] - a[:, 0]).clamp(min=0)
    len_b = (b[:, 1] - b[:, 0]).clamp(min=0)
    inter = (torch.minimum(a[:, None, 1], b[None, :, 1]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    union = len_a[:, None] + len_b[None, :] - inter
    return _iou_from_parts(inter, union).to(out_dtype)


def segment_iou_matched(a: Tensor, b: Tensor) -> Tensor:
    """IoU of matched pairs; ``(N, 2), (N, 2) -> (N,)`` in the promoted dtype."""
    a, b, out_dtype = _in_compute_dtype(a, b)
    len_a = (a[:, 1] - a[:, 0]).clamp(min=0)
    len_b = (b[:, 1] - b[:, 0]).clamp(min=0)
    inter = (torch.minimum(a[:, 1], b[:, 1]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    union = len_a + len_b - inter
    return _iou_from_parts(inter, union).to(out_dtype)


# --------------------------------------------------------------------- NMS


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
    """ActionFormer's overlap ``inter / (area_i + area_j - inter)``, 0 where the denominator is not positive."""
    lo = torch.where(ix1 < x1, x1, ix1)
    hi = torch.where(x2 < ix2, x2, ix2)
    d = hi - lo
    zero = torch.zeros((), dtype=d.dtype, device=d.device)
    inter = torch.where(zero < d, d, zero)
    den = ia + area - inter
    return torch.where(den > 0, inter / den, zero)


def soft_nms_grouped(
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
        method: 0 hard, 1 linear, 2 Gaussian decay.

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


def hard_nms_grouped(segs: Tensor, order: Tensor, offsets: Tensor, iou_threshold: float) -> Tensor:
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


def seg_voting(nms_segs: Tensor, segs: Tensor, scores: Tensor, thr: float) -> Tensor:
    """Score voting of boundaries; ``(K, 2), (N, 2), (N,) -> (K, 2)`` (sums in float64)."""
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


# ------------------------------------------------------------------- graph


def graph_refined_fwd(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    """Batched GEMM; ``x (N, K, C, T, V)``, ``A (N, K, C, V, V)`` -> ``(N, K, C, T, V)`` or ``(N, C, T, V)``."""
    cdt = compute_dtype(x.dtype)
    out = torch.matmul(x.to(cdt), A.to(cdt).transpose(-1, -2))  # out[..., t, u] = sum_v x[..., t, v] A[..., u, v]
    return (out.sum(1) if sum_subsets else out).to(x.dtype)


def graph_refined_bwd(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    """Gradients ``(gx, gA)`` of :func:`graph_refined_fwd` (an empty tensor for each one not needed)."""
    cdt = compute_dtype(x.dtype)
    g = grad.to(cdt)
    g = g.unsqueeze(1) if sum_subsets else g  # broadcast over the subsets
    gx = torch.matmul(g, A.to(cdt)).expand(x.shape).to(x.dtype).contiguous() if need_x else x.new_empty(_EMPTY)
    gA = torch.matmul(g.transpose(-1, -2), x.to(cdt)).to(A.dtype).contiguous() if need_A else A.new_empty(_EMPTY)
    return gx, gA


def graph_shared_fwd(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    """GEMM; ``x (N, C, T, V)``, ``A (K, V, V)`` -> ``(N, K, C, T, V)`` or ``(N, C, T, V)`` (contiguous)."""
    cdt = compute_dtype(x.dtype)
    xc, Ac = x.to(cdt), A.to(cdt)
    if sum_subsets:
        return torch.matmul(xc, Ac.sum(0).t()).to(x.dtype)
    n, c, t, v = x.shape
    k = A.shape[0]
    # one GEMM (N*C*T, V) x (V, K*V), then the (N, K, C, T, V) layout every backend returns
    out = (xc.reshape(n * c * t, v) @ Ac.reshape(k * v, v).t()).view(n, c, t, k, v).permute(0, 3, 1, 2, 4)
    return out.to(x.dtype).contiguous()


def graph_shared_bwd(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    """Gradients ``(gx, gA)`` of :func:`graph_shared_fwd` (an empty tensor for each one not needed)."""
    cdt = compute_dtype(x.dtype)
    g, xc, Ac = grad.to(cdt), x.to(cdt), A.to(cdt)
    n, c, t, v = x.shape
    k = A.shape[0]
    gx = gA = None
    if sum_subsets:
        if need_x:
            gx = torch.matmul(g, Ac.sum(0))
        if need_A:
            gA = (g.reshape(-1, v).t() @ xc.reshape(-1, v)).expand_as(Ac)
    else:
        # one layout copy of the gradient to (N*C*T, K*V), then two plain GEMMs: many small per-(n, k)
        # GEMMs stall on thread barriers on a busy machine (benchmarks/cuda_ops_graph_aggregate.py)
        g2 = g.permute(0, 2, 3, 1, 4).reshape(n * c * t, k * v)
        if need_x:  # gx[n] = sum_k g[n, k] @ A[k]
            gx = (g2 @ Ac.reshape(k * v, v)).view(n, c, t, v)
        if need_A:  # gA[k] = sum_n g[n, k]^T @ x[n]
            gA = (g2.t() @ xc.reshape(n * c * t, v)).view(k, v, v)
    return (
        gx.to(x.dtype).contiguous() if gx is not None else x.new_empty(_EMPTY),
        gA.to(A.dtype).contiguous() if gA is not None else A.new_empty(_EMPTY),
    )
