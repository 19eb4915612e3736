"""The ``torch.ops.tal_ops`` custom ops (schemas, fake impls, autograd) and the call path of the public functions.

Every op's implementation is ``_backend.kernel(op, device)``. The public functions reach it by one of
two roads, with the same result:

* plain eager code (:func:`plain_eager`): the kernel is called directly, skipping the dispatcher and,
  above all, the ``torch._dynamo`` import a ``torch.library.custom_op`` triggers on its first call
  (a CLI inference run should not pay for it);
* anything else (``torch.compile``/``torch.export`` tracing, ``__torch_dispatch__``/``__torch_function__``
  modes, functorch transforms, tensor subclasses, inputs that need a gradient): ``torch.ops.tal_ops.<op>``,
  whose registered implementation calls the same kernel.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import _backend
from ._reference import result_dtype

_EMPTY = (0,)

#: Schema of each op (``torch.ops.tal_ops.<name>``), arguments as the public modules pass them.
SCHEMAS = {
    "segment_iou": "(Tensor a, Tensor b) -> Tensor",
    "segment_iou_matched": "(Tensor a, Tensor b) -> Tensor",
    "nms_1d": "(Tensor segs, Tensor scores, float iou_threshold) -> Tensor",
    "soft_nms_1d": (
        "(Tensor segs, Tensor scores, float iou_threshold, float sigma, float min_score, SymInt method) "
        "-> (Tensor, Tensor)"
    ),
    "batched_nms": (
        "(Tensor segs, Tensor scores, Tensor labels, float iou_threshold, float min_score, SymInt max_seg_num, "
        "bool use_soft_nms, bool multiclass, float sigma, float voting_thresh, SymInt method) "
        "-> (Tensor, Tensor, Tensor)"
    ),
    "graph_aggregate_refined": "(Tensor x, Tensor A, bool sum_subsets) -> Tensor",
    "graph_aggregate_refined_backward": (
        "(Tensor grad, Tensor x, Tensor A, bool sum_subsets, bool need_x, bool need_A) -> (Tensor, Tensor)"
    ),
    "graph_aggregate_shared": "(Tensor x, Tensor A, bool sum_subsets) -> Tensor",
    "graph_aggregate_shared_backward": (
        "(Tensor grad, Tensor x, Tensor A, bool sum_subsets, bool need_x, bool need_A) -> (Tensor, Tensor)"
    ),
}


def plain_eager(*tensors: Tensor, differentiable: bool = False) -> bool:
    """Whether an op's kernel may be called as a plain function instead of through ``torch.ops``.

    True in ordinary eager execution: not traced by ``torch.compile``/``torch.export``, no
    ``__torch_dispatch__``/``__torch_function__`` mode or functorch transform active, plain tensors
    only, and (for ``differentiable`` ops) no input that needs a gradient.
    """
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return False
    if torch._C._len_torch_dispatch_stack() > 0 or torch._C._len_torch_function_stack() > 0:
        return False
    if any(type(t) is not Tensor for t in tensors):
        return False
    return not (differentiable and torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def call(op: str, *args: Any) -> Any:
    """Run the (non-differentiable) op ``op`` on ``args``, its first argument a tensor on the op's device."""
    tensors = [a for a in args if isinstance(a, Tensor)]
    if plain_eager(*tensors):
        return _backend.kernel(op, args[0].device)(*args)
    return getattr(torch.ops.tal_ops, op)(*args)


def call_graph(op: str, x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    """Run a differentiable graph aggregation op.

    Plain eager code goes straight to the kernel when no gradient is needed, and also when one is but
    the device is served by the pure-torch reference: torch's own autograd then runs through it, which
    costs less than the custom op's Python autograd (benchmarks/cuda_ops_graph_aggregate.py).
    """
    direct = plain_eager(x, A, differentiable=True) or (
        plain_eager(x, A) and _backend.implementation("graph_aggregate", x.device) == _backend.IMPL_REF
    )
    if direct:
        return _backend.kernel(op, x.device)(x, A, sum_subsets)
    return getattr(torch.ops.tal_ops, op)(x, A, sum_subsets)


# ------------------------------------------------------------- registration


def _implementation(op: str):
    def run(*args: Any) -> Any:
        return _backend.kernel(op, args[0].device)(*args)

    run.__name__ = op
    return run


_DEFS = {
    op: torch.library.custom_op(f"tal_ops::{op}", _implementation(op), mutates_args=(), schema=schema)
    for op, schema in SCHEMAS.items()
}


@_DEFS["segment_iou"].register_fake
def _segment_iou_fake(a: Tensor, b: Tensor) -> Tensor:
    return a.new_empty((a.shape[0], b.shape[0]), dtype=result_dtype(a, b))


@_DEFS["segment_iou_matched"].register_fake
def _segment_iou_matched_fake(a: Tensor, b: Tensor) -> Tensor:
    return a.new_empty((a.shape[0],), dtype=result_dtype(a, b))


@_DEFS["nms_1d"].register_fake
def _nms_1d_fake(segs: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    k = torch.library.get_ctx().new_dynamic_size()
    return segs.new_empty((k,), dtype=torch.int64)


@_DEFS["soft_nms_1d"].register_fake
def _soft_nms_1d_fake(
    segs: Tensor, scores: Tensor, iou_threshold: float, sigma: float, min_score: float, method: int
) -> tuple[Tensor, Tensor]:
    k = torch.library.get_ctx().new_dynamic_size()
    return segs.new_empty((k,), dtype=torch.int64), scores.new_empty((k,))


@_DEFS["batched_nms"].register_fake
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


@_DEFS["graph_aggregate_refined"].register_fake
def _refined_fake(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    n, k, c, t, v = x.shape
    return x.new_empty((n, c, t, v) if sum_subsets else (n, k, c, t, v))


@_DEFS["graph_aggregate_shared"].register_fake
def _shared_fake(x: Tensor, A: Tensor, sum_subsets: bool) -> Tensor:
    n, c, t, v = x.shape
    return x.new_empty((n, c, t, v) if sum_subsets else (n, A.shape[0], c, t, v))


def _backward_fake(
    grad: Tensor, x: Tensor, A: Tensor, sum_subsets: bool, need_x: bool, need_A: bool
) -> tuple[Tensor, Tensor]:
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else x.new_empty(_EMPTY),
        torch.empty_like(A, memory_format=torch.contiguous_format) if need_A else A.new_empty(_EMPTY),
    )


_DEFS["graph_aggregate_refined_backward"].register_fake(_backward_fake)
_DEFS["graph_aggregate_shared_backward"].register_fake(_backward_fake)


def _graph_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    x, A, sum_subsets = inputs
    ctx.save_for_backward(x, A)
    ctx.sum_subsets = sum_subsets


def _graph_autograd(backward_op: str):
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        x, A = ctx.saved_tensors
        need_x, need_A = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gx, gA = getattr(torch.ops.tal_ops, backward_op)(grad.contiguous(), x, A, ctx.sum_subsets, need_x, need_A)
        return (gx if need_x else None), (gA if need_A else None), None

    return backward


for _forward in ("graph_aggregate_refined", "graph_aggregate_shared"):
    _DEFS[_forward].register_autograd(_graph_autograd(f"{_forward}_backward"), setup_context=_graph_setup)
