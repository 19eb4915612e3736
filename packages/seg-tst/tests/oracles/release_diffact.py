"""DiffAct computed the plain way, with a :class:`~tal.seg_tst.modeling.diffact.DiffAct`'s weights.

Stated from the release's description (Finspire13/DiffAct model.py), not copied: a per-query table of
key indices gathered with ``index_select``, query/key projections of the concatenated
``[x, condition]``, the encoder re-run inside sampling and the global RNG seeded before the draw.
Tests compare the package's sampler with it; ``benchmarks/seg_tst_inference.py`` uses it as the
plain fp32 eager baseline.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tal.seg_tst.modeling.diffact import DiffAct, ddim_time_pairs, timestep_embedding


def window_indices(t_len: int, kernel_size: int, dilation: int) -> torch.Tensor:
    """``(T, K)`` indices into the padded sequence, one row per query, built one query at a time."""
    pad = (kernel_size // 2) * dilation
    rows = []
    for q in range(t_len):
        rows.append([i + pad for i in range(q - pad, q + pad + 1, dilation)])
    return torch.from_numpy(np.array(rows)).long()


def gathered_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int, dilation: int, d: int):
    t_len = q.shape[2]
    pad = (kernel_size // 2) * dilation
    idx = window_indices(t_len, kernel_size, dilation)
    flat = idx.reshape(-1)
    kg = torch.index_select(F.pad(k, (pad, pad)), 2, flat).reshape(k.shape[0], k.shape[1], t_len, kernel_size)
    vg = torch.index_select(F.pad(v, (pad, pad)), 2, flat).reshape(v.shape[0], v.shape[1], t_len, kernel_size)
    att = torch.einsum("ncl,nclk->nlk", q, kg)
    keep = (idx >= pad) & (idx < t_len + pad)
    att = att / np.sqrt(d)
    att = att + torch.log(keep + 1e-6)
    att = torch.softmax(att, 2) * keep
    return torch.einsum("nlk,nclk->ncl", att, vg)


def encoder_forward(model: DiffAct, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    enc = model.encoder
    h = enc.conv_in(x)
    kept = []
    for i, layer in enumerate(enc.encoder.layers):
        att = gathered_attention(
            layer.att_linear_q(h),
            layer.att_linear_k(h),
            layer.att_linear_v(h),
            layer.kernel_size,
            layer.dilation,
            layer.d_model,
        )
        h = h + layer.ffn_block(F.instance_norm(layer.conv_block(h) + att))
        if i in enc.feature_layer_indices:
            kept.append(h)
    return enc.conv_out(h), torch.cat(kept, 1)


def decoder_forward(model: DiffAct, cond: torch.Tensor, t: torch.Tensor, event: torch.Tensor) -> torch.Tensor:
    dec = model.decoder
    emb = dec.time_in[1](F.silu(dec.time_in[0](timestep_embedding(t, dec.time_emb_dim))))
    h = dec.conv_in(event) + dec.module.time_proj(F.silu(emb))[:, :, None]
    for layer in dec.module.layers:
        both = torch.cat([h, cond], 1)
        att = gathered_attention(
            layer.att_linear_q(both),
            layer.att_linear_k(both),
            layer.att_linear_v(h),
            layer.kernel_size,
            layer.dilation,
            layer.d_model,
        )
        h = h + layer.ffn_block(F.instance_norm(layer.conv_block(h) + att))
    return dec.conv_out(h)


@torch.no_grad()
def ddim_sample(model: DiffAct, x: torch.Tensor, seed: int) -> torch.Tensor:
    """The release's ``ddim_sample`` in eval mode: encoder, seed the global RNG, 25 DDIM steps."""
    _, cond = encoder_forward(model, x)
    torch.manual_seed(seed)
    s = model.scale
    x_t = torch.randn(x.shape[0], model.num_classes, x.shape[2])
    x_ret = x_t
    for time, time_next in ddim_time_pairs(model.num_timesteps, model.sampling_timesteps):
        tc = torch.full((1,), time, dtype=torch.long)
        x_m = (torch.clamp(x_t, -s, s) / s + 1) / 2
        x0 = torch.softmax(decoder_forward(model, cond, tc, x_m.float()), 1)
        x0 = torch.clamp((x0 * 2 - 1) * s, -s, s)
        noise_pred = (
            model.sqrt_recip_alphas_cumprod.gather(-1, tc).reshape(1, 1, 1) * x_t - x0
        ) / model.sqrt_recipm1_alphas_cumprod.gather(-1, tc).reshape(1, 1, 1)
        x_ret = x0.clone()
        if time_next < 0:
            x_t = x0
            continue
        a, an = model.alphas_cumprod[time], model.alphas_cumprod[time_next]
        sigma = model.eta * ((1 - a / an) * (1 - an) / (1 - a)).sqrt()
        c = (1 - an - sigma**2).sqrt()
        noise = torch.randn_like(x_t)
        x_t = x0 * an.sqrt() + c * noise_pred + sigma * noise
    return (x_ret / s + 1) / 2
