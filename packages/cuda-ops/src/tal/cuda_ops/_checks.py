"""Input validation shared by the public ops and the op bodies (imports only torch)."""

from __future__ import annotations

import torch
from torch import Tensor

#: Soft-NMS decay functions and their codes (ActionFormer's ``method`` argument).
SOFT_NMS_METHODS = {"hard": 0, "linear": 1, "gaussian": 2}


def check_segments(t: Tensor, name: str) -> None:
    """``t`` must be a real ``(N, 2)`` tensor."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 2 or t.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {tuple(t.shape)}")
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be a real tensor, got {t.dtype}")


def check_segments_and_scores(segs: Tensor, scores: Tensor) -> None:
    """Floating ``segs (N, 2)`` and ``scores (N,)``."""
    check_segments(segs, "segs")
    if scores.dim() != 1 or scores.shape[0] != segs.shape[0]:
        raise ValueError(f"scores must have shape ({segs.shape[0]},), got {tuple(scores.shape)}")
    if not (segs.dtype.is_floating_point and scores.dtype.is_floating_point):
        raise TypeError(f"segs and scores must be floating point, got {segs.dtype} and {scores.dtype}")


def soft_nms_method_code(method: str, argument: str = "method") -> int:
    """The code of a soft-NMS decay name (``"hard"``, ``"linear"``, ``"gaussian"``)."""
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f"{argument} must be one of {sorted(SOFT_NMS_METHODS)}, got {method!r}")
    return SOFT_NMS_METHODS[method]


def check_method(method: int, sigma: float) -> None:
    """A valid decay code, and a positive ``sigma`` for the Gaussian one."""
    if method not in (0, 1, 2):
        raise ValueError(f"method must be 0 (hard), 1 (linear) or 2 (gaussian), got {method}")
    if method == 2 and not sigma > 0:
        raise ValueError(f"sigma must be > 0 for Gaussian soft-NMS, got {sigma}")


def check_finite_inputs(segs: Tensor, scores: Tensor) -> None:
    """NMS inputs: NaN scores or coordinates are an error (they make the ranking undefined)."""
    if scores.numel() and bool(torch.isnan(scores).any()):
        raise ValueError("scores contain NaN; NMS needs a total order on scores")
    if segs.numel() and bool(torch.isnan(segs).any()):
        raise ValueError("segs contain NaN coordinates")
