"""Triton kernels: grouped soft-NMS / hard NMS (one program per group) and score voting.

A group's candidates live in registers (``BLOCK`` = next power of two of the
largest group, at most ``MAX_GROUP``); the sequential selection, decay and
swap-with-last removal follow the C++ kernel step by step, so results match
it (the Gaussian weight is ``exp`` in float64 rounded to the working dtype,
like the pure-torch reference). Scalars (thresholds, 1e-6) are read from a
small tensor in the working dtype so float64 runs use exact float64 values.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._common import div_rn

#: Largest group a program holds in registers (``tal.cuda_ops._backend`` sends bigger ones to the reference).
MAX_GROUP = 8192


@triton.jit
def _at(x, pos, idx, fill):
    """x[idx] as a scalar (exact: every other lane is ``fill``)."""
    return tl.max(tl.where(pos == idx, x, fill), axis=0)


@triton.jit
def _overlap(ix1, ix2, ia, x1, x2, ar):
    lo = tl.where(ix1 < x1, x1, ix1)
    hi = tl.where(x2 < ix2, x2, ix2)
    d = hi - lo
    inter = tl.where(d > 0, d, 0.0)
    den = ia + ar - inter
    return tl.where(den > 0, div_rn(inter, den), 0.0)


@triton.jit
def _soft_nms_kernel(
    segs_ptr,
    scores_ptr,
    offsets_ptr,
    params_ptr,
    out_id_ptr,
    out_sc_ptr,
    counts_ptr,
    max_num,
    METHOD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    g = tl.program_id(0)
    start = tl.load(offsets_ptr + g)
    n = (tl.load(offsets_ptr + g + 1) - start).to(tl.int32)
    thr = tl.load(params_ptr)
    sigma = tl.load(params_ptr + 1)
    min_score = tl.load(params_ptr + 2)
    eps = tl.load(params_ptr + 3)
    pos = tl.arange(0, BLOCK)
    valid = pos < n
    ident = start + pos
    x1 = tl.load(segs_ptr + 2 * ident, mask=valid, other=0.0)
    x2 = tl.load(segs_ptr + 2 * ident + 1, mask=valid, other=0.0)
    sc = tl.load(scores_ptr + ident, mask=valid, other=0.0)
    ar = (x2 - x1) + eps
    count = n
    i = 0
    while i < count:
        cand = (pos >= i) & (pos < count)
        best = tl.max(tl.where(cand, sc, float("-inf")), axis=0)
        mp = tl.min(tl.where(cand & (sc == best), pos, BLOCK), axis=0)
        x1_i = _at(x1, pos, i, float("-inf"))
        x2_i = _at(x2, pos, i, float("-inf"))
        ar_i = _at(ar, pos, i, float("-inf"))
        sc_i = _at(sc, pos, i, float("-inf"))
        id_i = _at(ident, pos, i, -1)
        x1_m = _at(x1, pos, mp, float("-inf"))
        x2_m = _at(x2, pos, mp, float("-inf"))
        ar_m = _at(ar, pos, mp, float("-inf"))
        sc_m = _at(sc, pos, mp, float("-inf"))
        id_m = _at(ident, pos, mp, -1)
        at_i = pos == i
        at_m = pos == mp
        x1 = tl.where(at_i, x1_m, tl.where(at_m, x1_i, x1))
        x2 = tl.where(at_i, x2_m, tl.where(at_m, x2_i, x2))
        ar = tl.where(at_i, ar_m, tl.where(at_m, ar_i, ar))
        sc = tl.where(at_i, sc_m, tl.where(at_m, sc_i, sc))
        ident = tl.where(at_i, id_m, tl.where(at_m, id_i, ident))
        tl.store(out_id_ptr + start + i, id_m)
        tl.store(out_sc_ptr + start + i, sc_m)
        ovr = _overlap(x1_m, x2_m, ar_m, x1, x2, ar)
        upd = (pos > i) & (pos < count)
        if METHOD == 2:
            arg = div_rn(-(ovr * ovr), sigma)
            weight = tl.exp(arg.to(tl.float64)).to(sc.dtype)
            sc = tl.where(upd & (ovr > 0), sc * weight, sc)
        elif METHOD == 1:
            sc = tl.where(upd & (ovr >= thr), sc * (1.0 - ovr), sc)
        else:
            sc = tl.where(upd & (ovr >= thr), sc * 0.0, sc)
        # Remove candidates below min_score: move the last one into the slot, look again.
        doomed = upd & (sc < min_score)
        p = tl.min(tl.where(doomed, pos, BLOCK), axis=0)
        while p < count:
            last = count - 1
            x1_l = _at(x1, pos, last, float("-inf"))
            x2_l = _at(x2, pos, last, float("-inf"))
            ar_l = _at(ar, pos, last, float("-inf"))
            sc_l = _at(sc, pos, last, float("-inf"))
            id_l = _at(ident, pos, last, -1)
            d_l = _at(doomed.to(tl.int32), pos, last, 0)
            at_p = pos == p
            x1 = tl.where(at_p, x1_l, x1)
            x2 = tl.where(at_p, x2_l, x2)
            ar = tl.where(at_p, ar_l, ar)
            sc = tl.where(at_p, sc_l, sc)
            ident = tl.where(at_p, id_l, ident)
            doomed = tl.where(at_p, d_l > 0, doomed) & (pos < last)
            count = last
            p = tl.min(tl.where(doomed & (pos >= p), pos, BLOCK), axis=0)
        i += 1
    kept = count
    if max_num > 0:
        kept = tl.minimum(kept, max_num)
    tl.store(counts_ptr + g, kept.to(tl.int64))


@triton.jit
def _hard_nms_kernel(segs_ptr, order_ptr, offsets_ptr, params_ptr, keep_ptr, BLOCK: tl.constexpr):
    g = tl.program_id(0)
    start = tl.load(offsets_ptr + g)
    n = (tl.load(offsets_ptr + g + 1) - start).to(tl.int32)
    thr = tl.load(params_ptr)
    eps = tl.load(params_ptr + 3)
    pos = tl.arange(0, BLOCK)
    valid = pos < n
    o = tl.load(order_ptr + start + pos, mask=valid, other=0)
    x1 = tl.load(segs_ptr + 2 * o, mask=valid, other=0.0)
    x2 = tl.load(segs_ptr + 2 * o + 1, mask=valid, other=0.0)
    ar = (x2 - x1) + eps
    keep = valid.to(tl.int32)
    for i in range(0, n):
        alive = _at(keep, pos, i, 0)
        if alive > 0:
            ovr = _overlap(
                _at(x1, pos, i, float("-inf")),
                _at(x2, pos, i, float("-inf")),
                _at(ar, pos, i, float("-inf")),
                x1,
                x2,
                ar,
            )
            keep = tl.where((pos > i) & (ovr >= thr), 0, keep)
    tl.store(keep_ptr + start + pos, keep.to(tl.uint8), mask=valid)


@triton.jit
def _voting_kernel(
    nms_ptr, segs_ptr, scores_ptr, params_ptr, out_ptr, k_rows, n, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr
):
    rk = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
    mk = rk < k_rows
    thr = tl.load(params_ptr)
    s = tl.load(nms_ptr + 2 * rk, mask=mk, other=0.0)
    e = tl.load(nms_ptr + 2 * rk + 1, mask=mk, other=0.0)
    length = e - s
    aw = tl.zeros((BLOCK_K,), dtype=tl.float64)
    a1 = tl.zeros((BLOCK_K,), dtype=tl.float64)
    a2 = tl.zeros((BLOCK_K,), dtype=tl.float64)
    for j0 in range(0, n, BLOCK_N):
        rn = j0 + tl.arange(0, BLOCK_N)
        mn = rn < n
        x1 = tl.load(segs_ptr + 2 * rn, mask=mn, other=0.0)
        x2 = tl.load(segs_ptr + 2 * rn + 1, mask=mn, other=0.0)
        sc = tl.load(scores_ptr + rn, mask=mn, other=0.0)
        lo = tl.where(s[:, None] < x1[None, :], x1[None, :], s[:, None])
        hi = tl.where(x2[None, :] < e[:, None], x2[None, :], e[:, None])
        d = hi - lo
        inter = tl.where(d > 0, d, 0.0)
        den = length[:, None] + (x2 - x1)[None, :] - inter
        iou = tl.where(den != 0, div_rn(inter, den), 0.0)
        w = tl.where((iou >= thr) & mn[None, :], sc[None, :] * iou, 0.0).to(tl.float64)
        aw += tl.sum(w, axis=1)
        a1 += tl.sum(w * x1[None, :].to(tl.float64), axis=1)
        a2 += tl.sum(w * x2[None, :].to(tl.float64), axis=1)
    v1 = tl.where(aw != 0, a1 / aw, s.to(tl.float64))
    v2 = tl.where(aw != 0, a2 / aw, e.to(tl.float64))
    tl.store(out_ptr + 2 * rk, v1.to(s.dtype), mask=mk)
    tl.store(out_ptr + 2 * rk + 1, v2.to(s.dtype), mask=mk)


def _params(dtype: torch.dtype, device: torch.device, iou_threshold: float, sigma: float, min_score: float) -> Tensor:
    return torch.tensor([iou_threshold, sigma, min_score, 1e-6], dtype=dtype, device=device)


def _block(largest: int) -> int:
    return max(16, triton.next_power_of_2(max(largest, 1)))


def _warps(block: int) -> int:
    return max(1, min(16, block // 256))


def largest_group(offsets: Tensor) -> int:
    """Size of the largest group delimited by ``offsets`` (CPU int64, ``(G + 1,)``)."""
    return int(offsets.diff().max()) if offsets.numel() > 1 else 0


def fits(offsets: Tensor) -> bool:
    """Whether every group delimited by ``offsets`` fits a program's registers (``<= MAX_GROUP``)."""
    return largest_group(offsets) <= MAX_GROUP


def _fits(offsets: Tensor) -> int:
    largest = largest_group(offsets)
    if largest > MAX_GROUP:
        raise ValueError(f"a group of {largest} candidates exceeds the Triton kernel's limit of {MAX_GROUP}")
    return largest


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
    """Same contract as ``torch.ops.tal_ops_ext.soft_nms_grouped`` (offsets on CPU, groups up to ``MAX_GROUP``)."""
    device = segs.device
    num_groups = offsets.numel() - 1
    largest = _fits(offsets)
    n = segs.shape[0]
    ids = torch.zeros(n, dtype=torch.int64, device=device)
    sel = torch.zeros(n, dtype=segs.dtype, device=device)
    counts = torch.zeros(max(num_groups, 0), dtype=torch.int64, device=device)
    if num_groups <= 0 or n == 0:
        return ids, sel, counts
    block = _block(largest)
    _soft_nms_kernel[(num_groups,)](
        segs,
        scores,
        offsets.to(device),
        _params(segs.dtype, device, iou_threshold, sigma, min_score),
        ids,
        sel,
        counts,
        int(max_num),
        METHOD=int(method),
        BLOCK=block,
        num_warps=_warps(block),
    )
    sizes = offsets.diff().to(device)
    local = torch.arange(n, device=device) - torch.repeat_interleave(offsets[:-1].to(device), sizes)
    keep = local < torch.repeat_interleave(counts, sizes)
    return ids[keep], sel[keep], counts


def hard_nms_grouped(segs: Tensor, order: Tensor, offsets: Tensor, iou_threshold: float) -> Tensor:
    """Same contract as ``torch.ops.tal_ops_ext.hard_nms_grouped`` (offsets on CPU, groups up to ``MAX_GROUP``)."""
    device = segs.device
    largest = _fits(offsets)
    keep = torch.zeros(order.shape[0], dtype=torch.uint8, device=device)
    num_groups = offsets.numel() - 1
    if order.numel() == 0 or num_groups <= 0:
        return keep
    block = _block(largest)
    _hard_nms_kernel[(num_groups,)](
        segs,
        order,
        offsets.to(device),
        _params(segs.dtype, device, iou_threshold, 0.0, 0.0),
        keep,
        BLOCK=block,
        num_warps=_warps(block),
    )
    return keep


def seg_voting(nms_segs: Tensor, segs: Tensor, scores: Tensor, thr: float) -> Tensor:
    """Same contract as ``torch.ops.tal_ops_ext.seg_voting``."""
    k = nms_segs.shape[0]
    out = torch.empty_like(nms_segs)
    if k == 0:
        return out
    block_k, block_n = 32, 64
    _voting_kernel[(triton.cdiv(k, block_k),)](
        nms_segs,
        segs,
        scores,
        _params(segs.dtype, segs.device, thr, 0.0, 0.0),
        out,
        k,
        segs.shape[0],
        BLOCK_K=block_k,
        BLOCK_N=block_n,
    )
    return out
