"""DiffAct (Liu et al., ICCV 2023): an ASFormer-style encoder and a denoising decoder over frame labels.

The module tree and names match the release's ``ASDiffusionModel`` so its ``release.model`` files
(``torch.save(model.state_dict())``, no prefix) load with ``strict=True``: the 12 diffusion-schedule
buffers ``betas`` … ``posterior_mean_coef2`` (float64, as the release registers them), then
``encoder.{conv_in, encoder.layers.N.*, conv_out}`` and ``decoder.{time_in.0/1, conv_in,
module.time_proj, module.layers.N.*, conv_out}``.

Numerics follow the release: local attention over ``kernel_size`` keys spaced by the layer's dilation
``2**i``, whose out-of-video keys get ``log(1e-6)`` added before the softmax and are zeroed after it
(so the weights of a window cut by the video's ends do not sum to one); DDIM sampling with the
release's integer time pairs, its float64 noise after the first step and ``x_0`` clamped to
``[-scale, scale]``. Differences are in execution only: attention windows are strided slices instead
of gathered index tensors, the encoder runs once per sample, and the decoder's condition terms
(the 768-channel half of its query/key projections) are computed once for all DDIM steps.

Shapes: features ``(B, C_in, T)``, frame probabilities / logits ``(B, K, T)``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tal.seg_tst.config import DiffActConfig
from tal.seg_tst.modeling.frame_losses import boundary_loss, frame_ce_loss, smoothing_loss, soft_targets
from tal.seg_tst.modeling.frames_last import (
    conv1x1_frames_last,
    dilated_conv_frames_last,
    linear_frames_last,
    shifted_ranges,
)
from tal.seg_tst.modeling.frames_last import conv_bias as _bias

INVALID_KEY_BIAS = 1e-6  # the release adds log(mask + 1e-6) to attention logits


# ---------------------------------------------------------------------------------------------
# Diffusion schedule and time embedding
# ---------------------------------------------------------------------------------------------
def cosine_beta_schedule(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """Betas ``(timesteps,)`` float64 of the cosine schedule (Nichol & Dhariwal), clipped to ``[0, 0.999]``."""
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    alphas_cumprod = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
    return torch.clip(betas, 0, 0.999)


SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)


def schedule_tensors(timesteps: int) -> dict[str, torch.Tensor]:
    """The 12 schedule buffers of the release (``SCHEDULE_BUFFERS`` order), each ``(timesteps,)`` float64."""
    betas = cosine_beta_schedule(timesteps)
    alphas = 1.0 - betas
    ac = torch.cumprod(alphas, dim=0)
    ac_prev = F.pad(ac[:-1], (1, 0), value=1.0)
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    return {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": torch.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": torch.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": torch.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": torch.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": torch.sqrt(1.0 / ac - 1),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": torch.log(post_var.clamp(min=1e-20)),
        "posterior_mean_coef1": betas * torch.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * torch.sqrt(alphas) / (1.0 - ac),
    }


def ddim_time_pairs(total_steps: int, sampling_steps: int) -> list[tuple[int, int]]:
    """``(t, t_next)`` pairs of DDIM sampling: ``linspace(-1, total - 1, sampling + 1)`` truncated to int,
    reversed. For 1000/25: ``(999, 959), (959, 919), …, (39, -1)``."""
    times = torch.linspace(-1, total_steps - 1, steps=sampling_steps + 1).int().tolist()
    times = list(reversed(times))
    return list(itertools.pairwise(times))


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``(B, dim)`` of integer steps ``t (B,)``: ``[sin(t w), cos(t w)]``,
    ``w_i = 10000^(-i / (dim/2 - 1))`` (zero-padded when ``dim`` is odd)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * -(math.log(10000) / (half - 1)))
    angles = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


def _swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


# ---------------------------------------------------------------------------------------------
# Local (dilated-window) attention
# ---------------------------------------------------------------------------------------------
def _window_bias(t_len: int, kernel_size: int, dilation: int, device: torch.device) -> torch.Tensor:
    """``(T, K)`` 1 where window slot ``j`` of frame ``t`` lies inside the video, else 0."""
    src = (
        torch.arange(t_len, device=device)[:, None]
        + (torch.arange(kernel_size, device=device) - kernel_size // 2) * dilation
    )
    return ((src >= 0) & (src < t_len)).float()


def _padded_frames_last(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``(B, C, T)`` → ``(B, T + 2 pad, C)`` contiguous, zeros in the ``pad`` rows at both ends."""
    b, c, t_len = x.shape
    out = x.new_empty(b, t_len + 2 * pad, c)
    out[:, :pad].zero_()
    out[:, pad + t_len :].zero_()
    out[:, pad : pad + t_len].copy_(x.transpose(1, 2))
    return out


def local_window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kernel_size: int,
    dilation: int,
    scale_dim: int,
    window_keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Each frame ``t`` attends to the ``kernel_size`` frames ``t + (j - kernel_size // 2) * dilation``.

    ``q, k (B, C, T)``, ``v (B, C_v, T)`` → ``(B, C_v, T)``. Logits are ``q·k / sqrt(scale_dim)``;
    keys outside the video are zero vectors whose logits get ``log(1e-6)`` added, the others
    ``log(1 + 1e-6)``; after the softmax the outside weights are set to zero (not renormalised).

    When the logits need no gradient this is :func:`local_window_attention_frames_last` on transposed
    views. Otherwise frames-last copies of the padded keys and values make every window slot a
    contiguous block of rows, with one product per slot for the logits.
    ``window_keep`` is :func:`_window_bias` when the caller has it already.
    """
    if not (torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)):
        qkv = (q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return local_window_attention_frames_last(*qkv, kernel_size, dilation, scale_dim, window_keep).transpose(1, 2)
    t_len = q.shape[2]
    pad = (kernel_size // 2) * dilation
    kt = _padded_frames_last(k, pad)  # (B, T + 2p, C)
    vt = _padded_frames_last(v, pad)
    qt = q.transpose(1, 2)  # (B, T, C)
    logits = torch.stack([(qt * kt[:, j * dilation : j * dilation + t_len]).sum(-1) for j in range(kernel_size)], -1)
    keep = window_keep if window_keep is not None else _window_bias(t_len, kernel_size, dilation, q.device)
    keep = keep.to(logits.dtype)
    att = torch.softmax(logits / np.sqrt(scale_dim) + torch.log(keep + INVALID_KEY_BIAS), dim=-1) * keep
    att = att.to(vt.dtype)
    out = att[..., 0:1] * vt[:, 0:t_len]
    for j in range(1, kernel_size):
        out = out.addcmul(att[..., j : j + 1], vt[:, j * dilation : j * dilation + t_len])
    return out.transpose(1, 2)


def _conv1x1(conv: nn.Conv1d, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
    """A kernel-1 convolution of ``x (B, C_in, T)`` as one matrix product (faster than the conv on CPU)."""
    w = conv.weight[:, :, 0]
    if bias and conv.bias is not None:
        return torch.baddbmm(
            conv.bias[None, :, None].expand(x.shape[0], -1, x.shape[2]), w.expand(x.shape[0], -1, -1), x
        )
    return torch.matmul(w, x)


def norm_ffn_residual(x: torch.Tensor, h: torch.Tensor, ffn: nn.Sequential) -> torch.Tensor:
    """``x + ffn(instance_norm(h))`` with the norm folded into the first 1x1 convolution:
    ``W1 ((h - m) r) + b1 = (W1 r) h + (b1 - (W1 r) m)`` for per-channel mean ``m`` and ``r = 1/sqrt(var + 1e-5)``."""
    first, second = cast(nn.Conv1d, ffn[0]), cast(nn.Conv1d, ffn[2])
    var, mean = torch.var_mean(h, -1, unbiased=False, keepdim=True)  # (B, C, 1)
    r = torch.rsqrt(var + 1e-5)
    w1 = first.weight[:, :, 0] * r.transpose(1, 2)  # (B, C_out, C_in)
    b1 = _bias(first)[None, :, None] - torch.matmul(w1, mean)  # (B, C_out, 1)
    h1 = torch.relu(torch.baddbmm(b1, w1, h))
    out = torch.baddbmm(x, second.weight[:, :, 0].expand(x.shape[0], -1, -1), h1)
    return out + _bias(second)[None, :, None]


# ---------------------------------------------------------------------------------------------
# The same layer arithmetic with frames last ``(B, T, C)``: the inference path
# ---------------------------------------------------------------------------------------------
# Without autograd the encoder and the decoder keep their activations frames-last from the first layer
# to the last: the projections are one matrix product each with the frame axis as rows, the dilated
# convolution is :func:`~tal.seg_tst.modeling.frames_last.dilated_conv_frames_last`, the window attention
# reads shifted row ranges instead of padded copies, and the instance norm's statistics are column means
# (``benchmarks/seg_tst_inference.py``).
def local_window_attention_frames_last(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kernel_size: int,
    dilation: int,
    scale_dim: int,
    window_keep: torch.Tensor | None = None,
    accumulate: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`local_window_attention` on frames-last ``q, k (B, T, C)``, ``v (B, T, C_v)`` → ``(B, T, C_v)``.

    Inputs may be column slices of one projection. A key outside the video is a zero vector (logit 0,
    then ``log(1e-6)`` added, weight zeroed after the softmax), so only the in-video row range of each
    slot is computed; values are summed slot by slot in window order, as the padded form does.
    ``accumulate`` ``(B, T, C_v)``: add the result into it in place and return it.
    """
    b, t_len, _ = q.shape
    ranges = shifted_ranges(t_len, kernel_size, dilation)
    logits = q.new_zeros(b, t_len, kernel_size)
    for j, lo, hi, off in ranges:
        logits[:, lo:hi, j] = torch.linalg.vecdot(q[:, lo:hi], k[:, lo + off : hi + off])
    keep = window_keep if window_keep is not None else _window_bias(t_len, kernel_size, dilation, q.device)
    keep = keep.to(logits.dtype)
    att = (torch.softmax(logits / np.sqrt(scale_dim) + torch.log(keep + INVALID_KEY_BIAS), dim=-1) * keep).to(v.dtype)
    out = v.new_zeros(b, t_len, v.shape[2]) if accumulate is None else accumulate
    for j, lo, hi, off in ranges:
        out[:, lo:hi].addcmul_(att[:, lo:hi, j : j + 1], v[:, lo + off : hi + off])
    return out


def norm_ffn_residual_frames_last(x: torch.Tensor, h: torch.Tensor, ffn: nn.Sequential) -> torch.Tensor:
    """:func:`norm_ffn_residual` on frames-last ``x, h (B, T, C)``: the norm's mean and (two-pass,
    biased) variance are column statistics, folded into the first 1x1 convolution."""
    first, second = cast(nn.Conv1d, ffn[0]), cast(nn.Conv1d, ffn[2])
    mean = h.mean(1, keepdim=True)  # (B, 1, C)
    var = (h - mean).square_().mean(1, keepdim=True)
    r = torch.rsqrt(var + 1e-5)
    w1 = first.weight[:, :, 0] * r  # (B, C_out, C_in)
    b1 = _bias(first)[None, None, :] - torch.matmul(mean, w1.transpose(1, 2))  # (B, 1, C_out)
    h1 = torch.relu_(torch.baddbmm(b1, h, w1.transpose(1, 2)))
    out = torch.baddbmm(x, h1, second.weight[:, :, 0].t().expand(x.shape[0], -1, -1))
    return out.add_(_bias(second))


def _attention_conv_ffn_frames_last(
    layer: EncoderLayer | DecoderLayer,
    x: torch.Tensor,
    xd: torch.Tensor,
    qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    keep: torch.Tensor | None,
) -> torch.Tensor:
    """The rest of a layer once its projections ``q, k, v (B, T, d)`` are known (frames last)."""
    d = layer.d_model
    h = dilated_conv_frames_last(cast(nn.Conv1d, layer.conv_block[0]), xd)
    h = local_window_attention_frames_last(*qkv, layer.kernel_size, layer.dilation, d, keep, accumulate=h)
    return norm_ffn_residual_frames_last(x, h, layer.ffn_block)


class EncoderLayer(nn.Module):
    """``x + ffn(instance_norm(conv(x') + attention(x')))`` with ``x' = dropout(x)``; dilation ``2**i``."""

    def __init__(self, d_model: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.kernel_size = kernel_size
        self.dilation = dilation
        pad = (kernel_size // 2) * dilation
        self.conv_block = nn.Sequential(nn.Conv1d(d_model, d_model, kernel_size, padding=pad, dilation=dilation))
        self.att_linear_q = nn.Conv1d(d_model, d_model, 1)
        self.att_linear_k = nn.Conv1d(d_model, d_model, 1)
        self.att_linear_v = nn.Conv1d(d_model, d_model, 1)
        self.ffn_block = nn.Sequential(nn.Conv1d(d_model, d_model, 1), nn.ReLU(), nn.Conv1d(d_model, d_model, 1))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xd = self.dropout(x)
        att = local_window_attention(
            _conv1x1(self.att_linear_q, xd),
            _conv1x1(self.att_linear_k, xd),
            _conv1x1(self.att_linear_v, xd),
            self.kernel_size,
            self.dilation,
            self.d_model,
        )
        return norm_ffn_residual(x, self.conv_block(xd) + att, self.ffn_block)

    def forward_frames_last(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` on frames-last ``x (B, T, d_model)``."""
        xd = self.dropout(x)
        w = torch.cat([self.att_linear_q.weight, self.att_linear_k.weight, self.att_linear_v.weight])[:, :, 0]
        bias = torch.cat([_bias(self.att_linear_q), _bias(self.att_linear_k), _bias(self.att_linear_v)])
        q, k, v = linear_frames_last(xd, w, bias).split(self.d_model, dim=-1)
        return _attention_conv_ffn_frames_last(self, x, xd, (q, k, v), None)


class EncoderStack(nn.Module):
    """The encoder's ``layers`` (named ``encoder.encoder`` in the release's state dict)."""

    def __init__(self, num_layers: int, d_model: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d_model, kernel_size, 2**i, dropout) for i in range(num_layers))

    def forward(self, x: torch.Tensor, keep: Sequence[int] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output of the last layer and the outputs of the layers in ``keep`` (in layer order), each
        ``(B, d_model, T)``; without autograd the layers run frames-last (the outputs are transposed views)."""
        kept = []
        frames_last = not torch.is_grad_enabled()
        if frames_last:
            x = x.transpose(1, 2).contiguous()
        layers: list[EncoderLayer] = list(self.layers)  # type: ignore[arg-type]
        for i, layer in enumerate(layers):
            x = layer.forward_frames_last(x) if frames_last else layer(x)
            if i in keep:
                kept.append(x.transpose(1, 2) if frames_last else x)
        return (x.transpose(1, 2) if frames_last else x), kept


class DiffActEncoder(nn.Module):
    """``conv_in`` → encoder layers → ``conv_out``; channel and temporal dropout on the input in training."""

    def __init__(self, config: DiffActConfig) -> None:
        super().__init__()
        p = config.encoder_params
        self.feature_layer_indices = list(p.feature_layer_indices)
        self.channel_dropout = p.channel_dropout_rate
        self.temporal_dropout = p.temporal_dropout_rate
        self.conv_in = nn.Conv1d(config.input_dim, p.num_f_maps, 1)
        self.encoder = EncoderStack(p.num_layers, p.num_f_maps, p.kernel_size, p.normal_dropout_rate)
        self.conv_out = nn.Conv1d(p.num_f_maps, config.num_classes, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C_in, T)`` → encoder logits ``(B, K, T)`` and the condition features ``(B, feat_dim, T)``:
        ``[input if -1] + [layers in feature_layer_indices] + [softmax(logits) if -2]`` concatenated."""
        raw = x
        if self.training:
            x = F.dropout1d(x, self.channel_dropout, training=True)  # whole channels
            x = F.dropout1d(x.transpose(1, 2), self.temporal_dropout, training=True).transpose(1, 2)  # whole frames
        keep = [i for i in self.feature_layer_indices if i >= 0]
        h, kept = self.encoder(self.conv_in(x), keep)
        logits = self.conv_out(h)
        parts = ([raw] if -1 in self.feature_layer_indices else []) + kept
        if -2 in self.feature_layer_indices:
            parts.append(torch.softmax(logits, 1))
        return logits, torch.cat(parts, 1)


class DecoderTerms(NamedTuple):
    """What a decoder layer reuses across DDIM steps: the condition half of its query/key projections
    plus their biases, and its window mask ``(T, kernel_size)``.

    ``frames_last=False`` (the autograd path): ``qk (B, 2 d_model, T)``; ``frames_last=True`` (the
    inference path): ``qk (B, T, 2 d_model)``.
    """

    qk: torch.Tensor
    keep: torch.Tensor
    frames_last: bool = False


class DecoderLayer(nn.Module):
    """Like :class:`EncoderLayer` but query and key read ``[x, condition]``: ``W [x; c] = W_x x + W_c c``.

    The condition half (:meth:`condition_terms`) does not depend on the noisy labels, so DDIM sampling
    computes it once per layer and reuses it at every step.
    """

    def __init__(self, d_model: int, d_cross: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.kernel_size = kernel_size
        self.dilation = dilation
        pad = (kernel_size // 2) * dilation
        self.conv_block = nn.Sequential(nn.Conv1d(d_model, d_model, kernel_size, padding=pad, dilation=dilation))
        self.att_linear_q = nn.Conv1d(d_model + d_cross, d_model, 1)
        self.att_linear_k = nn.Conv1d(d_model + d_cross, d_model, 1)
        self.att_linear_v = nn.Conv1d(d_model, d_model, 1)
        self.ffn_block = nn.Sequential(nn.Conv1d(d_model, d_model, 1), nn.ReLU(), nn.Conv1d(d_model, d_model, 1))
        self.dropout = nn.Dropout(dropout)

    def condition_terms(self, cond: torch.Tensor, frames_last: bool = False) -> DecoderTerms:
        """``W_c c + b`` of the query and key projections (dropout applied to ``c (B, d_cross, T)``) and the
        window mask of this layer's dilation; see :class:`DecoderTerms` for the two layouts."""
        c = self.dropout(cond)
        d = self.d_model
        keep = _window_bias(c.shape[2], self.kernel_size, self.dilation, c.device)
        w = torch.cat([self.att_linear_q.weight[:, d:, 0], self.att_linear_k.weight[:, d:, 0]], 0)
        bias = torch.cat([_bias(self.att_linear_q), _bias(self.att_linear_k)])
        if frames_last:
            return DecoderTerms(linear_frames_last(c.transpose(1, 2), w, bias), keep, True)
        qk = torch.baddbmm(bias[None, :, None].expand(c.shape[0], -1, c.shape[2]), w.expand(c.shape[0], -1, -1), c)
        return DecoderTerms(qk, keep)

    def forward_frames_last(self, x: torch.Tensor, terms: DecoderTerms) -> torch.Tensor:
        """:meth:`forward` on frames-last ``x (B, T, d_model)`` with frames-last ``terms``."""
        d = self.d_model
        xd = self.dropout(x)
        # separate (contiguous) query/key and value products: the value needs no condition term to add
        w_qk = torch.cat([self.att_linear_q.weight[:, :d, 0], self.att_linear_k.weight[:, :d, 0]])
        q, k = linear_frames_last(xd, w_qk, terms.qk).split(d, dim=-1)
        v = conv1x1_frames_last(self.att_linear_v, xd)
        return _attention_conv_ffn_frames_last(self, x, xd, (q, k, v), terms.keep)

    def forward(self, x: torch.Tensor, terms: DecoderTerms) -> torch.Tensor:
        if terms.frames_last:
            raise ValueError("frames-last DecoderTerms go to forward_frames_last")
        d = self.d_model
        xd = self.dropout(x)
        w = torch.cat([self.att_linear_q.weight[:, :d, 0], self.att_linear_k.weight[:, :d, 0]], 0)
        qk = torch.baddbmm(terms.qk, w.expand(x.shape[0], -1, -1), xd)
        att = local_window_attention(
            qk[:, :d], qk[:, d:], _conv1x1(self.att_linear_v, xd), self.kernel_size, self.dilation, d, terms.keep
        )
        return norm_ffn_residual(x, self.conv_block(xd) + att, self.ffn_block)


class DecoderStack(nn.Module):
    """``time_proj`` and the decoder's layers (named ``decoder.module`` in the release's state dict)."""

    def __init__(self, config: DiffActConfig, d_cross: int) -> None:
        super().__init__()
        p = config.decoder_params
        self.time_proj = nn.Linear(p.time_emb_dim, p.num_f_maps)
        self.layers = nn.ModuleList(
            DecoderLayer(p.num_f_maps, d_cross, p.kernel_size, 2**i, p.dropout_rate) for i in range(p.num_layers)
        )

    def condition_terms(self, cond: torch.Tensor, frames_last: bool = False) -> list[DecoderTerms]:
        layers: list[DecoderLayer] = list(self.layers)  # type: ignore[arg-type]
        return [layer.condition_terms(cond, frames_last) for layer in layers]

    def forward(self, x: torch.Tensor, terms: list[DecoderTerms], time_emb: torch.Tensor) -> torch.Tensor:
        """``x (B, d_model, T)``, or ``(B, T, d_model)`` when ``terms`` are frames-last; same layout out."""
        layers: list[DecoderLayer] = list(self.layers)  # type: ignore[arg-type]
        frames_last = bool(terms) and terms[0].frames_last
        time_bias = self.time_proj(_swish(time_emb))
        x = x + (time_bias[:, None, :] if frames_last else time_bias[:, :, None])
        for layer, t in zip(layers, terms, strict=True):
            x = layer.forward_frames_last(x, t) if frames_last else layer(x, t)
        return x


class DiffActDecoder(nn.Module):
    """``x_0`` logits ``(B, K, T)`` from noisy labels ``(B, K, T)`` in ``[0, 1]``, the step and the condition."""

    def __init__(self, config: DiffActConfig) -> None:
        super().__init__()
        p = config.decoder_params
        self.time_emb_dim = p.time_emb_dim
        self.time_in = nn.ModuleList(
            [nn.Linear(p.time_emb_dim, p.time_emb_dim), nn.Linear(p.time_emb_dim, p.time_emb_dim)]
        )
        self.conv_in = nn.Conv1d(config.num_classes, p.num_f_maps, 1)
        self.module = DecoderStack(config, config.feat_dim)
        self.conv_out = nn.Conv1d(p.num_f_maps, config.num_classes, 1)

    def condition_terms(self, cond: torch.Tensor, frames_last: bool = False) -> list[DecoderTerms]:
        """Per-layer condition halves of the query/key projections (reusable while ``cond`` is fixed)."""
        return self.module.condition_terms(cond, frames_last)

    def forward(
        self, cond: torch.Tensor, t: torch.Tensor, event: torch.Tensor, terms: list[DecoderTerms] | None = None
    ) -> torch.Tensor:
        """Logits ``(B, K, T)``; without autograd (or with frames-last ``terms``) the layers run frames-last."""
        emb = self.time_in[1](_swish(self.time_in[0](timestep_embedding(t, self.time_emb_dim))))
        terms = self.condition_terms(cond, not torch.is_grad_enabled()) if terms is None else terms
        if not terms[0].frames_last:
            return self.conv_out(self.module(self.conv_in(event), terms, emb))
        x = self.module(conv1x1_frames_last(self.conv_in, event.transpose(1, 2)), terms, emb)
        return conv1x1_frames_last(self.conv_out, x).transpose(1, 2)


# ---------------------------------------------------------------------------------------------
# The diffusion model
# ---------------------------------------------------------------------------------------------
@dataclass
class DiffActLosses:
    """The six weighted terms of DiffAct's training loss (scalars) and their weighted sum."""

    terms: dict[str, torch.Tensor]
    total: torch.Tensor


class DiffAct(nn.Module):
    """DiffAct's ``ASDiffusionModel``: encoder + denoising decoder + cosine schedule, DDIM sampling.

    ``forward(x)`` is :meth:`sample` (frame probabilities ``(B, K, T)`` in ``[0, 1]``).
    """

    betas: torch.Tensor
    alphas_cumprod: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    sqrt_recip_alphas_cumprod: torch.Tensor
    sqrt_recipm1_alphas_cumprod: torch.Tensor

    def __init__(self, config: DiffActConfig) -> None:
        super().__init__()
        self.config = config
        self.num_classes = config.num_classes
        diff = config.diffusion_params
        self.num_timesteps = diff.timesteps
        self.sampling_timesteps = diff.sampling_timesteps
        self.eta = diff.ddim_sampling_eta
        self.scale = diff.snr_scale
        for name, value in schedule_tensors(diff.timesteps).items():
            self.register_buffer(name, value)
        self.encoder = DiffActEncoder(config)
        self.decoder = DiffActDecoder(config)

    @classmethod
    def from_preset(cls, name: str, num_classes: int | None = None) -> DiffAct:
        """The release's model of dataset ``name`` (``gtea``, ``50salads``, ``breakfast``)."""
        return cls(DiffActConfig.preset(name, num_classes))

    @property
    def feat_dim(self) -> int:
        return self.config.feat_dim

    # -- encoder ------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder logits ``(B, K, T)`` and condition features ``(B, feat_dim, T)``."""
        if self.config.use_instance_norm:
            x = F.instance_norm(x)
        return self.encoder(x)

    # -- sampling -----------------------------------------------------------------------------
    def _denoise(
        self, cond: torch.Tensor, terms: list[DecoderTerms] | None, x: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted noise and ``x_0`` (in ``[-scale, scale]``) from ``x_t``."""
        s = self.scale
        x_m = (torch.clamp(x, -s, s) / s + 1) / 2
        x0 = torch.softmax(self.decoder(cond, t, x_m.float(), terms), 1)
        x0 = torch.clamp((x0 * 2 - 1.0) * s, -s, s)
        a = self.sqrt_recip_alphas_cumprod[t].reshape(-1, 1, 1)
        b = self.sqrt_recipm1_alphas_cumprod[t].reshape(-1, 1, 1)
        return (a * x - x0) / b, x0

    @torch.no_grad()
    def sample_from_condition(
        self,
        cond: torch.Tensor,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """DDIM sampling given the encoder's condition ``(B, feat_dim, T)`` → probabilities ``(B, K, T)``.

        ``seed`` makes the draw reproducible (a private generator: the global RNG is untouched);
        ``generator`` draws from the given one; neither: the global RNG. ``steps`` overrides
        ``sampling_timesteps``.
        """
        if seed is not None:
            generator = torch.Generator(device=cond.device).manual_seed(seed)
        shape = (cond.shape[0], self.num_classes, cond.shape[2])
        # In train mode (the release's frozen backbone while TST trains) dropout redraws the condition at
        # every layer call, so nothing is reused.
        terms = None if self.decoder.training else self.decoder.condition_terms(cond, frames_last=True)
        x = torch.randn(shape, device=cond.device, generator=generator)
        x0 = x
        for time, time_next in ddim_time_pairs(self.num_timesteps, steps or self.sampling_timesteps):
            t = torch.full((cond.shape[0],), time, device=cond.device, dtype=torch.long)
            pred_noise, x0 = self._denoise(cond, terms, x, t)
            if time_next < 0:
                break
            alpha = self.alphas_cumprod[time]
            alpha_next = self.alphas_cumprod[time_next]
            sigma = self.eta * ((1 - alpha / alpha_next) * (1 - alpha_next) / (1 - alpha)).sqrt()
            c = (1 - alpha_next - sigma**2).sqrt()
            # ``pred_noise`` is float64 (the schedule is), so from the second step on the noise is too.
            noise = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
            x = x0 * alpha_next.sqrt() + c * pred_noise + sigma * noise
        return (x0 / self.scale + 1) / 2

    @torch.no_grad()
    def sample(
        self, x: torch.Tensor, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The release's ``ddim_sample``: encode ``x (B, C_in, T)`` and sample → probabilities ``(B, K, T)``."""
        _, cond = self.encode(x)
        return self.sample_from_condition(cond, seed=seed, generator=generator)

    def forward(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        return self.sample(x, seed=seed)

    # -- training -----------------------------------------------------------------------------
    def q_sample(self, x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Forward diffusion ``sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε`` (float64 coefficients, as the release)."""
        a = self.sqrt_alphas_cumprod[t].reshape(-1, 1, 1)
        b = self.sqrt_one_minus_alphas_cumprod[t].reshape(-1, 1, 1)
        return a * x_start + b * noise

    def condition_mask(
        self, cond_type: str, labels: torch.Tensor, boundary: torch.Tensor, rng: random.Random
    ) -> torch.Tensor | None:
        """The release's condition dropping: multiplier ``(1, 1, T)`` of the condition, or ``None`` (keep all).

        ``zero`` drops everything, ``boundary03-``/``boundary05-`` frames whose boundary target is
        ``>= 0.3`` / ``0.5``, ``segment=1``/``segment=2`` the frames of one / two random classes
        present in ``labels (T,)`` (drawn with replacement).
        """
        if cond_type == "full":
            return None
        if cond_type == "zero":
            return torch.zeros_like(boundary)
        if cond_type in ("boundary03-", "boundary05-"):
            threshold = 0.3 if cond_type == "boundary03-" else 0.5
            return (boundary < threshold).to(boundary.dtype)
        present = torch.unique(labels).tolist()
        draws = 1 if cond_type == "segment=1" else 2
        keep = torch.ones_like(labels, dtype=boundary.dtype)
        for _ in range(draws):
            keep = keep * (labels != rng.choice(present)).to(boundary.dtype)
        return keep.reshape(1, 1, -1)

    def training_losses(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        boundary: torch.Tensor,
        class_weights: torch.Tensor | None = None,
        rng: random.Random | None = None,
    ) -> DiffActLosses:
        """DiffAct's ``get_training_loss`` for one video.

        ``x (1, C_in, T)``, ``labels (T,)`` int64 (``-100`` = ignore), ``boundary (T,)`` smoothed boundary
        targets in ``[0, 1]``. Returns the six weighted losses (the encoder boundary loss is zero) and
        their sum. ``rng`` picks the condition type (default: Python's global ``random``).
        """
        cfg = self.config
        rng = rng if rng is not None else random.Random(int(torch.randint(0, 2**31 - 1, (1,))))
        if self.config.use_instance_norm:
            x = F.instance_norm(x)
        enc_logits, cond = self.encoder(x)
        valid = labels >= 0
        onehot = F.one_hot(labels.clamp(min=0), self.num_classes).T.unsqueeze(0).to(x.dtype) * valid.to(x.dtype)
        soft = None
        if cfg.soft_label is not None:
            soft = soft_targets(onehot, cfg.soft_label)
        terms = {
            "encoder_ce_loss": frame_ce_loss(enc_logits, labels, soft, class_weights),
            "encoder_mse_loss": smoothing_loss(enc_logits),
            "encoder_boundary_loss": enc_logits.new_zeros(()),
        }

        # Decoder: noise the one-hot labels at a random step and denoise them from the condition.
        t = torch.randint(0, self.num_timesteps, (1,), device=x.device)
        noise = torch.randn(onehot.shape, device=x.device)
        x_start = (onehot * 2.0 - 1.0) * self.scale
        noisy = torch.clamp(self.q_sample(x_start, t, noise), -self.scale, self.scale)
        event = ((noisy / self.scale) + 1) / 2.0
        if cfg.diffusion_params.detach_decoder:
            cond = cond.detach()
        boundary = boundary.reshape(1, 1, -1).to(x.dtype)
        keep = self.condition_mask(rng.choice(cfg.diffusion_params.cond_types), labels, boundary, rng)
        dec_cond = cond if keep is None else cond * keep
        dec_logits = self.decoder(dec_cond, t, event.float())
        terms["decoder_ce_loss"] = frame_ce_loss(dec_logits, labels, soft, class_weights)
        terms["decoder_mse_loss"] = smoothing_loss(dec_logits)
        terms["decoder_boundary_loss"] = boundary_loss(dec_logits, boundary)
        weights = cfg.loss_weights.model_dump()
        weighted = {k: weights[k] * v for k, v in terms.items()}
        total = torch.stack([v.float() for v in weighted.values()]).sum()
        return DiffActLosses(weighted, total)
