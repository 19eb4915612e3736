"""Triton kernels: skeleton graph aggregation, forward and backward.

Each (T, V) slice is a tile padded to ``VP`` = max(16, next power of two of V)
joints; contractions use ``tl.dot`` (fp32 accumulation, IEEE precision for
float32 inputs, tensor cores for float16/bfloat16) except float64, which uses
broadcast-multiply-sum. Inputs are contiguous and of one dtype; outputs have
the input dtype.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _mm(a, b, USE_DOT: tl.constexpr, IEEE: tl.constexpr, UPCAST: tl.constexpr):
    """a (M, K) @ b (K, N) with fp32 (or fp64) accumulation."""
    if UPCAST:  # see _config: bfloat16 dot under the interpreter
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    if USE_DOT:
        if IEEE:
            return tl.dot(a, b, input_precision="ieee")
        return tl.dot(a, b)
    return tl.sum(a[:, :, None] * b[None, :, :], axis=1)


@triton.jit
def _load_tile(ptr, base, rows, rv, V, mask):
    """Rows ``rows`` (``(R,)``) of the row-major ``(*, V)`` matrix at ``ptr + base``, masked lanes 0."""
    return tl.load(ptr + base + rows[:, None] * V + rv[None, :], mask=mask, other=0.0)


@triton.jit
def _store_tile(ptr, base, rows, rv, V, value, mask):
    tl.store(ptr + base + rows[:, None] * V + rv[None, :], value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _summed_slab(slab, K, C, SUM: tl.constexpr):
    """The (N, C) slab of the summed gradient for an (N, K, C) slab (itself when subsets are kept apart)."""
    if SUM:
        return (slab // (K * C)) * C + slab % C
    return slab


@triton.jit
def _subset_rows(rr, CT, K, k, SUM: tl.constexpr):
    """Rows of subset ``k`` in an (N, K, C*T) layout for rows ``rr`` of an (N, C*T) one (``rr`` if summed)."""
    if SUM:
        return rr
    return ((rr // CT) * K + k) * CT + rr % CT


@triton.jit
def _refined_fwd_kernel(
    x_ptr,
    a_ptr,
    out_ptr,
    K,
    C,
    T,
    V,
    S,
    SUM: tl.constexpr,
    BT: tl.constexpr,
    VP: tl.constexpr,
    USE_DOT: tl.constexpr,
    IEEE: tl.constexpr,
    UPCAST: tl.constexpr,
    ACC: tl.constexpr,
):
    item = tl.program_id(0)
    rt = tl.program_id(1) * BT + tl.arange(0, BT)
    rv = tl.arange(0, VP)
    mt = rt < T
    mv = rv < V
    if SUM:
        n = item // C
        k0 = item * 0
    else:
        n = item // (K * C)
        k0 = (item // C) % K
    c = item % C
    acc = tl.zeros((BT, VP), dtype=ACC)
    for s in range(0, S):
        slab = ((n * K + k0 + s) * C + c).to(tl.int64)
        x = _load_tile(x_ptr, slab * T * V, rt, rv, V, mt[:, None] & mv[None, :])
        a = _load_tile(a_ptr, slab * V * V, rv, rv, V, mv[:, None] & mv[None, :])
        acc += _mm(x, tl.trans(a), USE_DOT, IEEE, UPCAST)  # out[t, u] = sum_v x[t, v] A[u, v]
    if SUM:
        out_slab = (n * C + c).to(tl.int64)
    else:
        out_slab = ((n * K + k0) * C + c).to(tl.int64)
    _store_tile(out_ptr, out_slab * T * V, rt, rv, V, acc, mt[:, None] & mv[None, :])


@triton.jit
def _refined_bwd_x_kernel(
    g_ptr,
    a_ptr,
    gx_ptr,
    K,
    C,
    T,
    V,
    SUM: tl.constexpr,
    BT: tl.constexpr,
    VP: tl.constexpr,
    USE_DOT: tl.constexpr,
    IEEE: tl.constexpr,
    UPCAST: tl.constexpr,
):
    slab = tl.program_id(0).to(tl.int64)  # (n, k, c)
    rt = tl.program_id(1) * BT + tl.arange(0, BT)
    rv = tl.arange(0, VP)
    mt = rt < T
    mv = rv < V
    gslab = _summed_slab(slab, K, C, SUM)
    g = _load_tile(g_ptr, gslab * T * V, rt, rv, V, mt[:, None] & mv[None, :])
    a = _load_tile(a_ptr, slab * V * V, rv, rv, V, mv[:, None] & mv[None, :])
    gx = _mm(g, a, USE_DOT, IEEE, UPCAST)  # gx[t, v] = sum_u g[t, u] A[u, v]
    _store_tile(gx_ptr, slab * T * V, rt, rv, V, gx, mt[:, None] & mv[None, :])


@triton.jit
def _refined_bwd_a_kernel(
    g_ptr,
    x_ptr,
    ga_ptr,
    K,
    C,
    T,
    V,
    SUM: tl.constexpr,
    BT: tl.constexpr,
    VP: tl.constexpr,
    USE_DOT: tl.constexpr,
    IEEE: tl.constexpr,
    UPCAST: tl.constexpr,
    ACC: tl.constexpr,
):
    slab = tl.program_id(0).to(tl.int64)
    rv = tl.arange(0, VP)
    mv = rv < V
    gslab = _summed_slab(slab, K, C, SUM)
    acc = tl.zeros((VP, VP), dtype=ACC)
    for t0 in range(0, T, BT):
        rt = t0 + tl.arange(0, BT)
        m = (rt < T)[:, None] & mv[None, :]
        g = _load_tile(g_ptr, gslab * T * V, rt, rv, V, m)
        x = _load_tile(x_ptr, slab * T * V, rt, rv, V, m)
        acc += _mm(tl.trans(g), x, USE_DOT, IEEE, UPCAST)  # gA[u, v] = sum_t g[t, u] x[t, v]
    _store_tile(ga_ptr, slab * V * V, rv, rv, V, acc, mv[:, None] & mv[None, :])


@triton.jit
def _shared_fwd_kernel(
    x_ptr,
    a_ptr,
    out_ptr,
    R,
    CT,
    K,
    V,
    SUM: tl.constexpr,
    BR: tl.constexpr,
    VP: tl.constexpr,
    USE_DOT: tl.constexpr,
    IEEE: tl.constexpr,
    UPCAST: tl.constexpr,
):
    rr = tl.program_id(0).to(tl.int64) * BR + tl.arange(0, BR)
    k = tl.program_id(1)
    rv = tl.arange(0, VP)
    mr = rr < R
    mv = rv < V
    x = _load_tile(x_ptr, 0, rr, rv, V, mr[:, None] & mv[None, :])
    a = _load_tile(a_ptr, k * V * V, rv, rv, V, mv[:, None] & mv[None, :])
    out = _mm(x, tl.trans(a), USE_DOT, IEEE, UPCAST)
    _store_tile(out_ptr, 0, _subset_rows(rr, CT, K, k, SUM), rv, V, out, mr[:, None] & mv[None, :])


@triton.jit
def _shared_bwd_x_kernel(
    g_ptr,
    a_ptr,
    gx_ptr,
    R,
    CT,
    K,
    V,
    S,
    SUM: tl.constexpr,
    BR: tl.constexpr,
    VP: tl.constexpr,
    USE_DOT: tl.constexpr,
    IEEE: tl.constexpr,
    UPCAST: tl.constexpr,
    ACC: tl.constexpr,
):
    rr = tl.program_id(0).to(tl.int64) * BR + tl.arange(0, BR)
    rv = tl.arange(0, VP)
    mr = rr < R
    mv = rv < V
    acc = tl.zeros((BR, VP), dtype=ACC)
    for k in range(0, S):
        g = _load_tile(g_ptr, 0, _subset_rows(rr, CT, K, k, SUM), rv, V, mr[:, None] & mv[None, :])
        a = _load_tile(a_ptr, k * V * V, rv, rv, V, mv[:, None] & mv[None, :])
        acc += _mm(g, a, USE_DOT, IEEE, UPCAST)
    _store_tile(gx_ptr, 0, rr, rv, V, acc, mr[:, None] & mv[None, :])


@triton.jit
def _shared_bwd_a_kernel(
    g_ptr,
    x_ptr,
    part_ptr,
    R,
    CT,
    K,
    V,
    ROWS_PER_PROG,
    SUM: tl.constexpr,
    BR: tl.constexpr,
    VP: tl.constexpr,
    USE_DOT: tl.constexpr,
    IEEE: tl.constexpr,
    UPCAST: tl.constexpr,
    ACC: tl.constexpr,
):
    prog = tl.program_id(0)
    k = tl.program_id(1)
    rv = tl.arange(0, VP)
    mv = rv < V
    acc = tl.zeros((VP, VP), dtype=ACC)
    first = prog.to(tl.int64) * ROWS_PER_PROG
    for r0 in range(0, ROWS_PER_PROG, BR):
        rr = first + r0 + tl.arange(0, BR)
        mr = (rr < R) & (r0 + tl.arange(0, BR) < ROWS_PER_PROG)
        m = mr[:, None] & mv[None, :]
        g = _load_tile(g_ptr, 0, _subset_rows(rr, CT, K, k, SUM), rv, V, m)
        x = _load_tile(x_ptr, 0, rr, rv, V, m)
        acc += _mm(tl.trans(g), x, USE_DOT, IEEE, UPCAST)
    base = (prog * tl.num_programs(1) + k).to(tl.int64) * VP * VP
    tl.store(part_ptr + base + rv[:, None] * VP + rv[None, :], acc)


def _config(dtype: torch.dtype, v: int) -> dict:
    vp = max(16, triton.next_power_of_2(v))
    use_dot = dtype != torch.float64
    return {
        "VP": vp,
        "USE_DOT": use_dot,
        "IEEE": dtype == torch.float32,
        # Triton's interpreter (3.8) computes bfloat16 tl.dot on raw bit patterns; there
        # (only) bfloat16 tiles are converted to float32 first, which is what the GPU
        # dot computes anyway (exact products, float32 accumulation).
        "UPCAST": dtype == torch.bfloat16 and os.environ.get("TRITON_INTERPRET") == "1",
        "ACC": tl.float64 if dtype == torch.float64 else tl.float32,
        "BT": 32 if use_dot else 16,
    }


def graph_refined_fwd(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    """x (N, K, C, T, V), A (N, K, C, V, V) -> (N, K, C, T, V) or (N, C, T, V)."""
    n, k, c, t, v = x.shape
    out = torch.empty((n, c, t, v) if sum_subsets else (n, k, c, t, v), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    if k == 0:
        return out.zero_()
    cfg = _config(x.dtype, v)
    items = n * c if sum_subsets else n * k * c
    grid = (items, triton.cdiv(t, cfg["BT"]))
    _refined_fwd_kernel[grid](x, A, out, k, c, t, v, k if sum_subsets else 1, SUM=bool(sum_subsets), **cfg)
    return out


def graph_refined_bwd(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    n, k, c, t, v = x.shape
    cfg = _config(x.dtype, v)
    gx = torch.empty_like(x) if need_x else x.new_empty((0,))
    ga = torch.empty_like(A) if need_A else A.new_empty((0,))
    slabs = n * k * c
    if slabs == 0 or t == 0 or v == 0:
        return (gx.zero_() if need_x else gx), (ga.zero_() if need_A else ga)
    if need_x:
        bx = {key: val for key, val in cfg.items() if key != "ACC"}
        _refined_bwd_x_kernel[(slabs, triton.cdiv(t, cfg["BT"]))](grad, A, gx, k, c, t, v, SUM=bool(sum_subsets), **bx)
    if need_A:
        _refined_bwd_a_kernel[(slabs,)](grad, x, ga, k, c, t, v, SUM=bool(sum_subsets), **cfg)
    return gx, ga


def _shared_cfg(dtype: torch.dtype, v: int) -> dict:
    cfg = _config(dtype, v)
    cfg["BR"] = 64 if cfg["USE_DOT"] else 16
    del cfg["BT"]
    return cfg


def graph_shared_fwd(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    """x (N, C, T, V), A (K, V, V) -> (N, K, C, T, V) or (N, C, T, V)."""
    n, c, t, v = x.shape
    k = A.shape[0]
    out = torch.empty((n, c, t, v) if sum_subsets else (n, k, c, t, v), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    if k == 0:
        return out.zero_()
    mats = A.sum(0, keepdim=True).contiguous() if sum_subsets else A
    cfg = _shared_cfg(x.dtype, v)
    fwd = {key: val for key, val in cfg.items() if key != "ACC"}
    rows = n * c * t
    grid = (triton.cdiv(rows, cfg["BR"]), mats.shape[0])
    _shared_fwd_kernel[grid](x, mats, out, rows, c * t, k, v, SUM=bool(sum_subsets), **fwd)
    return out


def graph_shared_bwd(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    n, c, t, v = x.shape
    k = A.shape[0]
    rows = n * c * t
    cfg = _shared_cfg(x.dtype, v)
    gx = torch.empty_like(x) if need_x else x.new_empty((0,))
    ga = torch.empty_like(A) if need_A else A.new_empty((0,))
    if rows == 0 or k == 0 or v == 0:
        return (gx.zero_() if need_x else gx), (ga.zero_() if need_A else ga)
    if need_x:
        mats = A.sum(0, keepdim=True).contiguous() if sum_subsets else A
        _shared_bwd_x_kernel[(triton.cdiv(rows, cfg["BR"]),)](
            grad, mats, gx, rows, c * t, k, v, mats.shape[0], SUM=bool(sum_subsets), **cfg
        )
    if need_A:
        s = 1 if sum_subsets else k
        programs = max(1, min(256, triton.cdiv(rows, 4 * cfg["BR"])))
        per_prog = triton.cdiv(rows, programs)
        acc_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        part = torch.empty((programs, s, cfg["VP"], cfg["VP"]), dtype=acc_dtype, device=x.device)
        _shared_bwd_a_kernel[(programs, s)](grad, x, part, rows, c * t, k, v, per_prog, SUM=bool(sum_subsets), **cfg)
        total = part.sum(0)[:, :v, :v].to(A.dtype)
        ga = total.expand(k, v, v).contiguous() if sum_subsets else total.contiguous()
    return gx, ga
