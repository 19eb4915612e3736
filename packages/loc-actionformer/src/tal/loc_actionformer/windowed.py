"""Windowed inference: long inputs run as overlapping windows whose network outputs are stitched.

A window covers ``core`` steps plus ``context`` steps on either side. Every window is run through
the network on its own; only the outputs of points inside its core are kept, written into
full-length per-level tensors, and the ordinary decoding (per-level threshold, top-k) and NMS run
on those. When ``context`` is at least the network's receptive radius (:func:`receptive_radius`),
each kept output sees exactly the inputs it sees in a whole run, so the detections are the same;
peak memory is that of one window. Window bounds are multiples of ``max_div_factor`` so every
pyramid level's grid lines up with the whole run's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from tal.loc_actionformer.config import ActionFormerConfig

if TYPE_CHECKING:
    from tal.loc_actionformer.model import ActionFormer


def receptive_radius(config: ActionFormerConfig) -> int | None:
    """Steps on either side of a point that can change its outputs; ``None`` if unbounded.

    Unbounded with global attention on some level or absolute position encodings (both see the
    whole sequence).
    """
    if config.use_abs_pe or any(w <= 1 for w in config.mha_win_sizes):
        return None
    wins = config.mha_win_sizes
    s = config.scale_factor
    radius = config.backbone_arch[0] * (config.embd_kernel_size // 2)  # embedding convs
    radius += config.backbone_arch[1] * (1 + wins[0] // 2)  # stem: depthwise conv + attention
    for i in range(config.backbone_arch[2]):  # branch: strided conv / max-pool, attention at the new stride
        radius += s**i * (s // 2) + s ** (i + 1) * (wins[i + 1] // 2)
    top = s ** config.backbone_arch[2]
    radius += top * config.head_num_layers * (config.head_kernel_size // 2)  # heads on the coarsest level
    return radius


def window_context(config: ActionFormerConfig) -> int:
    """Context steps used for windows: ``infer_context`` or the receptive radius, rounded up to
    a multiple of ``max_div_factor``."""
    div = config.max_div_factor
    ctx = config.infer_context if config.infer_context is not None else receptive_radius(config)
    if ctx is None:  # unbounded receptive field: a quarter window of context (approximate)
        ctx = (config.infer_window or config.max_seq_len) // 4
    return math.ceil(ctx / div) * div


def window_bounds(length: int, window: int, context: int) -> list[tuple[int, int, int, int]]:
    """``(lo, hi, core_lo, core_hi)`` of each window over ``length`` steps (cores tile ``[0, length)``)."""
    core = window - 2 * context
    if core <= 0:
        raise ValueError(f"infer_window {window} leaves no core after {context} steps of context on each side")
    out = []
    for c0 in range(0, length, core):
        c1 = min(c0 + core, length)
        out.append((max(0, c0 - context), min(length, c1 + context), c0, c1))
    return out


@torch.no_grad()
def windowed_outputs(
    model: ActionFormer, features: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """:meth:`ActionFormer.forward_features` of one video ``(C, T)`` computed window by window.

    Returns what a whole run returns (batch of one): points ``(T_l, 4)``, masks ``(1, T_l)``,
    class logits ``(1, T_l, K)`` and offsets ``(1, T_l, 2)`` per level.
    """
    cfg = model.config
    if cfg.infer_window is None:
        raise ValueError("windowed inference needs config.infer_window")
    length = features.shape[-1]
    full = model.padded_length(length)
    strides = model.fpn_strides
    sizes = [full // s for s in strides]
    dev = model.device
    logits = [torch.zeros(1, n, model.num_classes, device=dev) for n in sizes]
    offsets = [torch.zeros(1, n, 2, device=dev) for n in sizes]
    masks = [torch.zeros(1, n, dtype=torch.bool, device=dev) for n in sizes]
    context = window_context(cfg)
    for lo, hi, c0, c1 in window_bounds(length, cfg.infer_window, context):
        inputs, in_masks = model.preprocess([features[:, lo:hi]])
        _, w_masks, w_logits, w_offsets = model.forward_features(inputs, in_masks)
        end = full if c1 == length else c1  # the last core also covers the padding
        for lvl, s in enumerate(strides):
            a, b = c0 // s, -(-end // s)
            la, lb = a - lo // s, b - lo // s
            logits[lvl][:, a:b] = w_logits[lvl][:, la:lb].float()
            offsets[lvl][:, a:b] = w_offsets[lvl][:, la:lb].float()
            masks[lvl][:, a:b] = w_masks[lvl][:, la:lb]
        del inputs, in_masks, w_masks, w_logits, w_offsets
    points = model.point_generator([torch.empty(1, 1, n, device=dev) for n in sizes])
    return points, masks, logits, offsets
