"""Device functions shared by the Triton kernels."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def div_rn(a, b):
    """IEEE round-to-nearest division (Triton's fp32 ``/`` may be approximate on GPUs)."""
    if a.dtype == tl.float32:
        return tl.math.div_rn(a, b)
    return a / b
