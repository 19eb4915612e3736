"""Primitives of the frames-last ``(B, T, C)`` inference layout shared by DiffAct and TST.

Without autograd, tal's DiffAct layers and TST's pixel decoder keep their activations frames-last:
1x1 convolutions become matrix products with the frame axis as rows and dilated convolutions run as
channels-last oneDNN convolutions (or, at large dilations, one product per kernel tap), with no layout
copy between layers (``benchmarks/seg_tst_inference.py``, ``benchmarks/seg_tst_refiner.py``).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


def conv_bias(conv: nn.Conv1d) -> torch.Tensor:
    """``conv.bias``; the convolutions these primitives serve all have one."""
    if conv.bias is None:
        raise ValueError(f"{conv} has no bias")
    return conv.bias


def shifted_ranges(t_len: int, kernel_size: int, dilation: int) -> list[tuple[int, int, int, int]]:
    """``(j, lo, hi, offset)`` per window slot ``j`` whose key frames ``t + offset`` lie in the video for
    ``lo <= t < hi`` (slots wholly outside the video are left out)."""
    out = []
    for j in range(kernel_size):
        offset = (j - kernel_size // 2) * dilation
        lo, hi = max(0, -offset), min(t_len, t_len - offset)
        if lo < hi:
            out.append((j, lo, hi, offset))
    return out


#: From this dilation on, :func:`dilated_conv_frames_last` adds one product per kernel tap over shifted
#: row ranges instead of calling oneDNN, whose channels-last kernel slows down about 2x there while the
#: products' cost does not depend on the dilation (``benchmarks/seg_tst_inference.py``).
SHIFTED_TAPS_MIN_DILATION = 128


def dilated_conv_frames_last(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv`` (``padding = dilation * (kernel // 2)``) on frames-last ``x (B, T, C_in)`` → ``(B, T, C_out)``:
    a channels-last 2-D convolution over a height-1 image (no layout copy either way), or from
    ``SHIFTED_TAPS_MIN_DILATION`` on, ``bias + sum_j x[t + (j - K // 2) d] @ W_j.T`` over the taps ``j``."""
    dilation = cast(tuple[int, ...], conv.dilation)[0]
    if dilation >= SHIFTED_TAPS_MIN_DILATION:
        b, t_len, _ = x.shape
        out = conv_bias(conv).expand(b, t_len, -1).contiguous()
        for j, lo, hi, off in shifted_ranges(t_len, conv.weight.shape[2], dilation):
            out[:, lo:hi].baddbmm_(x[:, lo + off : hi + off], conv.weight[:, :, j].t().expand(b, -1, -1))
        return out
    image = x.transpose(1, 2).unsqueeze(2)  # (B, C, 1, T), channels-last strides
    out = F.conv2d(
        image.contiguous(memory_format=torch.channels_last),
        conv.weight.unsqueeze(2),
        conv.bias,
        padding=(0, cast(tuple[int, ...], conv.padding)[0]),
        dilation=(1, dilation),
    )
    return out.squeeze(2).transpose(1, 2)


def linear_frames_last(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x (B, T, C_in) @ weight.T + bias`` for ``weight (C_out, C_in)``, ``bias`` ``(C_out,)`` or ``(B, T, C_out)``."""
    b = x.shape[0]
    return torch.baddbmm(bias.expand(b, x.shape[1], -1), x, weight.t().expand(b, -1, -1))


def conv1x1_frames_last(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """The kernel-1 convolution ``conv`` on frames-last ``x (B, T, C_in)`` → ``(B, T, C_out)``."""
    return linear_frames_last(x, conv.weight[:, :, 0], conv_bias(conv))
