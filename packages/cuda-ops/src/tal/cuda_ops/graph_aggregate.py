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
reference, measured faster than both torch.einsum and the C++ kernel
(benchmarks/cuda_ops_graph_aggregate.py); ``TAL_OPS_GRAPH_CPU=ext`` selects the
C++ kernel. CUDA tensors use Triton.
"""

from __future__ import annotations

from torch import Tensor

from . import _ops

__all__ = ["graph_aggregate"]


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
        return _ops.call_graph("graph_aggregate_shared", x, A, bool(sum_subsets))
    if A.dim() == 4:
        if x.dim() != 4:
            raise ValueError(f"with a refined A (N, C, V, V), x must be (N, C, T, V), got {tuple(x.shape)}")
        n, c, _, v = x.shape
        if A.shape != (n, c, v, v):
            raise ValueError(f"A must be ({n}, {c}, {v}, {v}) for x of shape {tuple(x.shape)}, got {tuple(A.shape)}")
        return _ops.call_graph("graph_aggregate_refined", x.unsqueeze(1), A.unsqueeze(1), True)
    if A.dim() == 5:
        if x.dim() != 5:
            raise ValueError(f"with A (N, K, C, V, V), x must be (N, K, C, T, V), got {tuple(x.shape)}")
        n, k, c, _, v = x.shape
        if A.shape != (n, k, c, v, v):
            raise ValueError(
                f"A must be ({n}, {k}, {c}, {v}, {v}) for x of shape {tuple(x.shape)}, got {tuple(A.shape)}"
            )
        return _ops.call_graph("graph_aggregate_refined", x, A, bool(sum_subsets))
    raise ValueError(f"A must be (K, V, V), (N, C, V, V) or (N, K, C, V, V), got {tuple(A.shape)}")
