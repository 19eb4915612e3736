"""Skeleton graph aggregation, the contraction of ST-GCN / CTR-GCN graph convolutions.

Two kinds of topology (``V`` joints):

* shared ``A (K, V, V)``, one adjacency per subset:
  ``out[n, k, c, t, u] = sum_v A[k, u, v] * x[n, c, t, v]`` -> ``(N, K, C, T, V)``,
  or summed over ``k`` -> ``(N, C, T, V)``;
* channel-wise refined ``A (N, C, V, V)`` (CTR-GCN):
  ``out[n, c, t, u] = sum_v A[n, c, u, v] * x[n, c, t, v]``; several subsets in
  one call with ``x (N, K, C, T, V)``, ``A (N, K, C, V, V)`` -> ``(N, K, C, T, V)``
  or summed over ``k``.

float16/bfloat16 inputs are computed with float32 accumulation and rounded
once (all backends). Both ops have a registered autograd formula whose backward
is itself a dispatched op. On CPU the default is the pure-torch batched-GEMM
reference, which was measured faster than both torch.einsum and the C++ kernel
(see ``backend_info``); ``TAL_OPS_GRAPH_CPU=ext`` selects the C++ kernel. CUDA
tensors use Triton.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import _backend
from ._utils import compute_dtype, plain_eager

__all__ = [
    "graph_aggregate",
    "graph_refined_backward_reference",
    "graph_refined_reference",
    "graph_shared_backward_reference",
    "graph_shared_reference",
]

_EMPTY = (0,)


# ------------------------------------------------------------------ references


def graph_refined_reference(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    """Batched-GEMM reference; ``x (N, K, C, T, V)``, ``A (N, K, C, V, V)`` (contiguous result)."""
    cdt = compute_dtype(x.dtype)
    out = torch.matmul(x.to(cdt), A.to(cdt).transpose(-1, -2))  # out[..., t, u] = sum_v x[..., t, v] A[..., u, v]
    return (out.sum(1) if sum_subsets else out).to(x.dtype)


def graph_refined_backward_reference(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    cdt = compute_dtype(x.dtype)
    g = grad.to(cdt)
    g = g.unsqueeze(1) if sum_subsets else g  # broadcast over the subsets
    gx = torch.matmul(g, A.to(cdt)).expand(x.shape).to(x.dtype).contiguous() if need_x else x.new_empty(_EMPTY)
    gA = torch.matmul(g.transpose(-1, -2), x.to(cdt)).to(A.dtype).contiguous() if need_A else A.new_empty(_EMPTY)
    return gx, gA


def graph_shared_reference(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    """GEMM reference; ``x (N, C, T, V)``, ``A (K, V, V)`` (contiguous result)."""
    cdt = compute_dtype(x.dtype)
    xc, Ac = x.to(cdt), A.to(cdt)
    if sum_subsets:
        return torch.matmul(xc, Ac.sum(0).t()).to(x.dtype)
    n, c, t, v = x.shape
    k = A.shape[0]
    # one GEMM (N*C*T, V) x (V, K*V), then the (N, K, C, T, V) layout every backend returns
    out = (xc.reshape(n * c * t, v) @ Ac.reshape(k * v, v).t()).view(n, c, t, k, v).permute(0, 3, 1, 2, 4)
    return out.to(x.dtype).contiguous()


def graph_shared_backward_reference(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
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
        # one layout copy of the gradient to (N*C*T, K*V), then two plain GEMMs (no per-(n, k) loops:
        # many small GEMMs stall on thread barriers and measured up to 40x slower on a shared machine)
        g2 = g.permute(0, 2, 3, 1, 4).reshape(n * c * t, k * v)
        if need_x:  # gx[n] = sum_k g[n, k] @ A[k]
            gx = (g2 @ Ac.reshape(k * v, v)).view(n, c, t, v)
        if need_A:  # gA[k] = sum_n g[n, k]^T @ x[n]
            gA = (g2.t() @ xc.reshape(n * c * t, v)).view(k, v, v)
    return (
        gx.to(x.dtype).contiguous() if gx is not None else x.new_empty(_EMPTY),
        gA.to(A.dtype).contiguous() if gA is not None else A.new_empty(_EMPTY),
    )


# ------------------------------------------------------------ compiled kernels


def _kernels(device: torch.device) -> tuple[Any, bool] | None:
    """(kernel namespace, whether it takes float16/bfloat16 as is) serving ``device``, or None."""
    if device.type == "cpu" and _backend.use_ext("graph_aggregate"):
        return torch.ops.tal_ops_ext, False
    if device.type == "cuda":
        tri = _backend.triton_module()
        if tri is not None:
            return tri, True
    return None


def _args(tensors: tuple[Tensor, ...], keeps_half: bool) -> list[Tensor]:
    if keeps_half and tensors[0].dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        return [t.contiguous() for t in tensors]
    cdt = compute_dtype(tensors[0].dtype)
    return [t.to(cdt).contiguous() for t in tensors]


def _refined_fwd(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    found = _kernels(x.device)
    if found is None:
        return graph_refined_reference(x, A, sum_subsets)
    k, keeps_half = found
    return k.graph_refined_fwd(*_args((x, A), keeps_half), sum_subsets).to(x.dtype)


def _refined_bwd(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    found = _kernels(x.device)
    if found is None:
        return graph_refined_backward_reference(grad, x, A, sum_subsets, need_x, need_A)
    k, keeps_half = found
    gx, gA = k.graph_refined_bwd(*_args((grad, x, A), keeps_half), sum_subsets, need_x, need_A)
    return gx.to(x.dtype), gA.to(A.dtype)


def _shared_fwd(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    found = _kernels(x.device)
    if found is None:
        return graph_shared_reference(x, A, sum_subsets)
    k, keeps_half = found
    return k.graph_shared_fwd(*_args((x, A), keeps_half), sum_subsets).to(x.dtype)


def _shared_bwd(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    found = _kernels(x.device)
    if found is None:
        return graph_shared_backward_reference(grad, x, A, sum_subsets, need_x, need_A)
    k, keeps_half = found
    gx, gA = k.graph_shared_bwd(*_args((grad, x, A), keeps_half), sum_subsets, need_x, need_A)
    return gx.to(x.dtype), gA.to(A.dtype)


# ----------------------------------------------------------------- torch.library


@torch.library.custom_op("tal_ops::graph_aggregate_refined", mutates_args=())
def _refined_op(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    return _refined_fwd(x, A, sum_subsets)


@_refined_op.register_fake
def _refined_fake(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    n, k, c, t, v = x.shape
    return x.new_empty((n, c, t, v) if sum_subsets else (n, k, c, t, v))


@torch.library.custom_op("tal_ops::graph_aggregate_refined_backward", mutates_args=())
def _refined_bwd_op(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    return _refined_bwd(grad, x, A, sum_subsets, need_x, need_A)


@_refined_bwd_op.register_fake
def _refined_bwd_fake(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else x.new_empty(_EMPTY),
        torch.empty_like(A, memory_format=torch.contiguous_format) if need_A else A.new_empty(_EMPTY),
    )


def _refined_setup(ctx, inputs, output) -> None:
    x, A, sum_subsets = inputs
    ctx.save_for_backward(x, A)
    ctx.sum_subsets = sum_subsets


def _refined_backward(ctx, grad):
    x, A = ctx.saved_tensors
    need_x, need_A = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    gx, gA = torch.ops.tal_ops.graph_aggregate_refined_backward(
        grad.contiguous(), x, A, ctx.sum_subsets, need_x, need_A
    )
    return (gx if need_x else None), (gA if need_A else None), None


_refined_op.register_autograd(_refined_backward, setup_context=_refined_setup)


@torch.library.custom_op("tal_ops::graph_aggregate_shared", mutates_args=())
def _shared_op(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    return _shared_fwd(x, A, sum_subsets)


@_shared_op.register_fake
def _shared_fake(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    n, c, t, v = x.shape
    return x.new_empty((n, c, t, v) if sum_subsets else (n, A.shape[0], c, t, v))


@torch.library.custom_op("tal_ops::graph_aggregate_shared_backward", mutates_args=())
def _shared_bwd_op(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    return _shared_bwd(grad, x, A, sum_subsets, need_x, need_A)


@_shared_bwd_op.register_fake
def _shared_bwd_fake(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else x.new_empty(_EMPTY),
        torch.empty_like(A, memory_format=torch.contiguous_format) if need_A else A.new_empty(_EMPTY),
    )


def _shared_setup(ctx, inputs, output) -> None:
    x, A, sum_subsets = inputs
    ctx.save_for_backward(x, A)
    ctx.sum_subsets = sum_subsets


def _shared_backward(ctx, grad):
    x, A = ctx.saved_tensors
    need_x, need_A = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    gx, gA = torch.ops.tal_ops.graph_aggregate_shared_backward(grad.contiguous(), x, A, ctx.sum_subsets, need_x, need_A)
    return (gx if need_x else None), (gA if need_A else None), None


_shared_op.register_autograd(_shared_backward, setup_context=_shared_setup)


# -------------------------------------------------------------------- public API


def _direct(x: Tensor, A: Tensor) -> bool:
    """Whether to skip the custom op: plain eager code that needs no gradient, or needs one while the
    device is served by the pure-torch reference (then torch's own autograd runs through it, which is
    cheaper than the custom op's Python autograd: 0.95x -> 1.09x einsum's speed at N=16, C=T=64)."""
    if plain_eager(x, A, differentiable=True):
        return True
    return plain_eager(x, A) and _kernels(x.device) is None


def _refined(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    if _direct(x, A):
        return _refined_fwd(x, A, sum_subsets)
    return torch.ops.tal_ops.graph_aggregate_refined(x, A, sum_subsets)


def _shared(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    if _direct(x, A):
        return _shared_fwd(x, A, sum_subsets)
    return torch.ops.tal_ops.graph_aggregate_shared(x, A, sum_subsets)


def graph_aggregate(x: Tensor, A: Tensor, *, sum_subsets: bool = False) -> Tensor:
    """Graph-convolution aggregation over joints (differentiable in ``x`` and ``A``).

    Args:
        x: ``(N, C, T, V)`` features, or ``(N, K, C, T, V)`` (one slice per subset,
            with a 5-D refined ``A``).
        A: shared ``(K, V, V)``; refined ``(N, C, V, V)``; or refined per subset
            ``(N, K, C, V, V)``.
        sum_subsets: sum the ``K`` subset outputs (shared and 5-D refined ``A``).

    Returns:
        shared: ``(N, K, C, T, V)`` (``(N, C, T, V)`` if ``sum_subsets``);
        refined 4-D: ``(N, C, T, V)``; refined 5-D: ``(N, K, C, T, V)``
        (``(N, C, T, V)`` if ``sum_subsets``). ``out[..., t, u] = sum_v A[..., u, v] * x[..., t, v]``.
    """
    if not (x.dtype.is_floating_point and A.dtype.is_floating_point):
        raise TypeError(f"x and A must be floating point, got {x.dtype} and {A.dtype}")
    if x.dtype != A.dtype:
        raise TypeError(f"x and A must have the same dtype, got {x.dtype} and {A.dtype}")
    if A.dim() == 3:
        if x.dim() != 4:
            raise ValueError(f"with a shared A (K, V, V), x must be (N, C, T, V), got {tuple(x.shape)}")
        v = x.shape[3]
        if A.shape[1:] != (v, v):
            raise ValueError(f"A must be (K, {v}, {v}) for x with V={v}, got {tuple(A.shape)}")
        return _shared(x, A, bool(sum_subsets))
    if A.dim() == 4:
        if x.dim() != 4:
            raise ValueError(f"with a refined A (N, C, V, V), x must be (N, C, T, V), got {tuple(x.shape)}")
        n, c, _, v = x.shape
        if A.shape != (n, c, v, v):
            raise ValueError(f"A must be ({n}, {c}, {v}, {v}) for x of shape {tuple(x.shape)}, got {tuple(A.shape)}")
        return _refined(x.unsqueeze(1), A.unsqueeze(1), True)
    if A.dim() == 5:
        if x.dim() != 5:
            raise ValueError(f"with A (N, K, C, V, V), x must be (N, K, C, T, V), got {tuple(x.shape)}")
        n, k, c, _, v = x.shape
        if A.shape != (n, k, c, v, v):
            raise ValueError(
                f"A must be ({n}, {k}, {c}, {v}, {v}) for x of shape {tuple(x.shape)}, got {tuple(A.shape)}"
            )
        return _refined(x, A, bool(sum_subsets))
    raise ValueError(f"A must be (K, V, V), (N, C, V, V) or (N, K, C, V, V), got {tuple(A.shape)}")
