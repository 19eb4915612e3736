"""Triton kernels: pairwise and matched segment IoU (same definition as the reference)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._common import div_rn


@triton.jit
def _iou(sa, ea, sb, eb):
    la = ea - sa
    la = tl.where(la < 0, 0.0, la)  # keeps NaN
    lb = eb - sb
    lb = tl.where(lb < 0, 0.0, lb)
    lo = tl.where(sa > sb, sa, sb)
    hi = tl.where(ea < eb, ea, eb)
    inter = hi - lo
    inter = tl.where(inter < 0, 0.0, inter)
    union = la + lb - inter
    q = div_rn(inter, union)
    return tl.where(union > 0, q, tl.where(union == union, 0.0, union))


@triton.jit
def _pairwise_kernel(a_ptr, b_ptr, out_ptr, n, m, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr):
    rn = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    rm = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    mn = rn < n
    mm = rm < m
    sa = tl.load(a_ptr + 2 * rn, mask=mn, other=0.0)
    ea = tl.load(a_ptr + 2 * rn + 1, mask=mn, other=0.0)
    sb = tl.load(b_ptr + 2 * rm, mask=mm, other=0.0)
    eb = tl.load(b_ptr + 2 * rm + 1, mask=mm, other=0.0)
    iou = _iou(sa[:, None], ea[:, None], sb[None, :], eb[None, :])
    offs = rn[:, None].to(tl.int64) * m + rm[None, :]
    tl.store(out_ptr + offs, iou, mask=mn[:, None] & mm[None, :])


@triton.jit
def _matched_kernel(a_ptr, b_ptr, out_ptr, n, BLOCK: tl.constexpr):
    r = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = r < n
    sa = tl.load(a_ptr + 2 * r, mask=mask, other=0.0)
    ea = tl.load(a_ptr + 2 * r + 1, mask=mask, other=0.0)
    sb = tl.load(b_ptr + 2 * r, mask=mask, other=0.0)
    eb = tl.load(b_ptr + 2 * r + 1, mask=mask, other=0.0)
    tl.store(out_ptr + r, _iou(sa, ea, sb, eb), mask=mask)


def segment_iou(a: Tensor, b: Tensor) -> Tensor:
    """``(N, 2), (M, 2) -> (N, M)``; contiguous float32/float64 inputs of one dtype."""
    n, m = a.shape[0], b.shape[0]
    out = torch.empty((n, m), dtype=a.dtype, device=a.device)
    if n == 0 or m == 0:
        return out
    block_n, block_m = 32, 128
    grid = (triton.cdiv(n, block_n), triton.cdiv(m, block_m))
    _pairwise_kernel[grid](a, b, out, n, m, BLOCK_N=block_n, BLOCK_M=block_m)
    return out


def segment_iou_matched(a: Tensor, b: Tensor) -> Tensor:
    """``(N, 2), (N, 2) -> (N,)``; contiguous float32/float64 inputs of one dtype."""
    n = a.shape[0]
    out = torch.empty((n,), dtype=a.dtype, device=a.device)
    if n == 0:
        return out
    block = 1024
    _matched_kernel[(triton.cdiv(n, block),)](a, b, out, n, BLOCK=block)
    return out
