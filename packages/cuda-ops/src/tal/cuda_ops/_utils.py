"""Small helpers shared by the op modules."""

from __future__ import annotations

import torch
from torch import Tensor


def result_dtype(*tensors: Tensor) -> torch.dtype:
    """Promoted floating dtype of the inputs (integers give float32)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype if dtype.is_floating_point else torch.float32


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Kernels compute in float64 for float64 inputs and in float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_segments(t: Tensor, name: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 2 or t.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {tuple(t.shape)}")
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be a real tensor, got {t.dtype}")


def check_finite_inputs(segs: Tensor, scores: Tensor) -> None:
    """NMS inputs: NaN scores or coordinates are an error (they make the ranking undefined)."""
    if scores.numel() and bool(torch.isnan(scores).any()):
        raise ValueError("scores contain NaN; NMS needs a total order on scores")
    if segs.numel() and bool(torch.isnan(segs).any()):
        raise ValueError("segs contain NaN coordinates")


def sort_desc(scores: Tensor) -> Tensor:
    """Indices sorting ``scores`` in descending order, ties as ``torch.sort`` on CPU orders them.

    ActionFormer sorts with the (unstable) CPU ``torch.sort``; doing the same on
    every device keeps the order of tied scores identical to it.
    """
    if scores.device.type == "cpu":
        return torch.sort(scores, descending=True).indices
    return torch.sort(scores.cpu(), descending=True).indices.to(scores.device)


def plain_eager(*tensors: Tensor, differentiable: bool = False) -> bool:
    """Whether an op's kernel may be called as a plain function instead of through ``torch.ops``.

    True in ordinary eager execution: not traced by ``torch.compile``/``torch.export``, no
    ``__torch_dispatch__``/``__torch_function__`` mode or functorch transform active, plain tensors
    only, and (for ``differentiable`` ops) no input that needs a gradient. The result is the same
    either way; the direct call skips the dispatcher and, above all, the ``torch._dynamo`` import that
    a ``torch.library.custom_op`` kernel triggers on its first call (~1 s and ~150 MB of RSS).
    """
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return False
    if torch._C._len_torch_dispatch_stack() > 0 or torch._C._len_torch_function_stack() > 0:
        return False
    if any(type(t) is not Tensor for t in tensors):
        return False
    return not (differentiable and torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
