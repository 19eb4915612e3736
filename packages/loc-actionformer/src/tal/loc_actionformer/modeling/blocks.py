"""Building blocks of ActionFormer: masked 1-D convs, channel LayerNorm, (local) conv-attention, transformer blocks.

Tensors are ``(B, C, T)``; masks are ``(B, 1, T)`` bool with ``True`` on valid steps. Module and
parameter names follow the release so its checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tal.loc_actionformer.config import AttnImpl


class MaskedConv1D(nn.Module):
    """``nn.Conv1d`` (odd kernel, "same" padding) whose output is zeroed on invalid steps.

    With ``stride > 1`` the mask is subsampled by nearest neighbour (``mask[..., ::stride]``),
    so ``T`` must be divisible by the stride. The bias, if any, starts at zero.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1 or padding != kernel_size // 2:
            raise ValueError(f"MaskedConv1D needs an odd kernel and padding=kernel//2, got {kernel_size}, {padding}")
        self.stride = stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, C_in, T)``, ``mask (B, 1, T)`` → ``(B, C_out, T // stride)``, mask ``(B, 1, T // stride)``."""
        if x.shape[-1] % self.stride != 0:
            raise ValueError(f"sequence length {x.shape[-1]} is not divisible by the conv stride {self.stride}")
        out_mask = mask[..., :: self.stride] if self.stride > 1 else mask
        out = self.conv(x)
        return out * out_mask.to(out.dtype), out_mask


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``(B, C, T)``; affine parameters have shape ``(1, C, 1)``.

    Statistics are computed in float32 and the result cast back to the input dtype.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(1, num_channels, 1))
            self.bias = nn.Parameter(torch.zeros(1, num_channels, 1))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, C, T)``."""
        if x.dim() != 3 or x.shape[1] != self.num_channels:
            raise ValueError(f"LayerNorm({self.num_channels}) got input of shape {tuple(x.shape)}")
        x32 = x.float()
        var, mean = torch.var_mean(x32, dim=1, correction=0, keepdim=True)
        out = (x32 - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            out = out * self.weight + self.bias
        return out.to(x.dtype)


def sinusoid_encoding(n_position: int, d_hid: int) -> torch.Tensor:
    """Transformer sinusoid table as ``(1, d_hid, n_position)``: sin on even channels, cos on odd ones."""
    pos = torch.arange(n_position, dtype=torch.float64)[:, None]
    j = torch.arange(d_hid, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, 2.0 * torch.div(j, 2, rounding_mode="floor") / d_hid)
    table = torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float().t().unsqueeze(0)


class Scale(nn.Module):
    """Multiply by a learnable scalar ``scale`` (shape ``()``)."""

    def __init__(self, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(init_value, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Any shape → same shape."""
        return x * self.scale


def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False) -> torch.Tensor:
    """Stochastic depth: zero whole samples with probability ``drop_prob`` and rescale the kept ones."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    keep_mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * keep_mask


class DropPath(nn.Module):
    """Module form of :func:`drop_path`."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Any shape → same shape."""
        return drop_path(x, self.drop_prob, self.training)


class AffineDropPath(nn.Module):
    """Per-channel learnable scale (``scale (1, C, 1)``, init 1e-4) followed by drop path (LayerScale-style)."""

    def __init__(self, num_dim: int, drop_prob: float = 0.0, init_scale_value: float = 1e-4) -> None:
        super().__init__()
        self.scale = nn.Parameter(init_scale_value * torch.ones(1, num_dim, 1))
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, C, T)``."""
        return drop_path(self.scale * x, self.drop_prob, self.training)


# ---------------------------------------------------------------------------------------------
# Local (banded) attention
# ---------------------------------------------------------------------------------------------
def band_offsets(rows: int, cols: int, shift: int = 0, device: torch.device | None = None) -> torch.Tensor:
    """``(rows, cols)`` int matrix of ``col - row + shift``."""
    r = torch.arange(rows, device=device)
    c = torch.arange(cols, device=device)
    return c[None, :] - r[:, None] + shift


def local_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor,
    window_overlap: int,
    rel_bias: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Local attention as full attention with an explicit band mask (the reference path).

    Query ``i`` attends to keys ``j`` with ``|i - j| <= window_overlap``, ``0 <= j < T`` and
    ``key_mask[j]``; rows of invalid queries (``key_mask[i]`` false, queries and keys share the grid)
    are zero. This is the semantics of the release's sliding-chunk (Longformer) attention.

    Args:
        q, k, v: ``(B, H, T, D)``; ``q`` is not pre-scaled (scale ``1/sqrt(D)`` is applied here).
        key_mask: ``(B, T)`` bool.
        window_overlap: ``w = window_size // 2``.
        rel_bias: optional ``(H, 2w + 1)`` additive bias indexed by ``j - i + w``.
        dropout_p: dropout on the attention probabilities.

    Returns:
        ``(B, H, T, D)``.
    """
    w = window_overlap
    t = q.shape[-2]
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    offs = band_offsets(t, t, shift=w, device=q.device)  # j - i + w
    band = (offs >= 0) & (offs <= 2 * w)
    if rel_bias is not None:
        scores = scores + rel_bias[:, offs.clamp(0, 2 * w)].unsqueeze(0).to(scores.dtype)
    allowed = band[None, None] & key_mask[:, None, None, :]
    scores = scores.masked_fill(~allowed, float("-inf"))
    att = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    att = att.masked_fill(~key_mask[:, None, :, None], 0.0)
    if dropout_p > 0.0:
        att = F.dropout(att, dropout_p)
    return torch.matmul(att, v)


def default_block_size(window_overlap: int) -> int:
    """Query block length of the blocked layout: ``max(16, 2w)`` (block sizes 16-64 time alike on CPU)."""
    return max(16, 2 * window_overlap)


def local_attention_blocked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor,
    window_overlap: int,
    rel_bias: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    block_size: int | None = None,
) -> torch.Tensor:
    """Local attention with ``scaled_dot_product_attention`` over a blocked layout (the fast path).

    The sequence is cut into query blocks of ``block_size`` steps; each block attends to the
    ``block_size + 2w`` keys around it with a band mask, so cost is ``O(T (block_size + 2w))``.
    Any ``T`` works (internally padded). Same inputs, outputs and semantics as
    :func:`local_attention_reference`.
    """
    b, _h, t, _d = q.shape
    w = window_overlap
    bs = block_size or default_block_size(w)
    nb = -(-t // bs)
    tp = nb * bs
    span = bs + 2 * w

    def blocks_of(x: torch.Tensor) -> torch.Tensor:  # (B, H, T, D) -> (B*nb, H, span, D)
        xp = F.pad(x, (0, 0, w, tp - t + w))
        xb = xp.unfold(2, span, bs)  # (B, H, nb, D, span)
        return rearrange(xb, "b h n d s -> (b n) h s d")

    qb = rearrange(F.pad(q, (0, 0, 0, tp - t)), "b h (n s) d -> (b n) h s d", s=bs)
    kb, vb = blocks_of(k), blocks_of(v)
    key_ok = F.pad(key_mask, (w, tp - t + w), value=False).unfold(1, span, bs)  # (B, nb, span)
    query_ok = F.pad(key_mask, (0, tp - t), value=False).view(b, nb, bs)
    offs = band_offsets(bs, span, device=q.device)  # j - i + w in block coordinates
    band = (offs >= 0) & (offs <= 2 * w)
    # invalid queries may look at anything in their band (their rows are zeroed below): no empty rows
    allowed = band[None, None] & (key_ok[:, :, None, :] | ~query_ok[:, :, :, None])
    allowed = allowed.reshape(b * nb, 1, bs, span)
    if rel_bias is not None:
        bias = rel_bias[:, offs.clamp(0, 2 * w)].to(q.dtype)  # (H, bs, span)
        attn_mask = bias.unsqueeze(0).masked_fill(~allowed, float("-inf"))
    else:
        attn_mask = allowed
    out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=attn_mask, dropout_p=dropout_p)
    out = rearrange(out, "(b n) h s d -> b h (n s) d", b=b)[:, :, :t]
    return out * key_mask[:, None, :, None].to(out.dtype)


def global_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor, dropout_p: float = 0.0
) -> torch.Tensor:
    """Full attention over valid keys: ``q (B, H, Tq, D)``, ``k, v (B, H, Tk, D)``, ``key_mask (B, Tk)``."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :], dropout_p=dropout_p)


class MaskedMHCA(nn.Module):
    """Multi-head conv-attention: depthwise (optionally strided) convs + LayerNorm before the q/k/v projections.

    ``window_size > 1`` gives local attention (each step sees ``window_size // 2`` steps on either
    side, the release's ``LocalMaskedMHCA``); otherwise global attention (``MaskedMHCA``).
    ``impl`` picks the local-attention kernel: ``"blocked_sdpa"`` (fast) or ``"band_mask"`` (reference).
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        window_size: int = -1,
        n_qx_stride: int = 1,
        n_kv_stride: int = 1,
        attn_pdrop: float = 0.0,
        proj_pdrop: float = 0.0,
        use_rel_pe: bool = False,
        impl: AttnImpl = "blocked_sdpa",
    ) -> None:
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd {n_embd} is not divisible by n_head {n_head}")
        for s in (n_qx_stride, n_kv_stride):
            if s != 1 and s % 2 != 0:
                raise ValueError(f"attention strides must be 1 or even, got {s}")
        self.n_embd = n_embd
        self.n_head = n_head
        self.n_channels = n_embd // n_head
        self.window_size = window_size
        self.window_overlap = window_size // 2
        self.local = window_size > 1
        self.n_qx_stride = n_qx_stride
        self.n_kv_stride = n_kv_stride
        self.attn_pdrop = attn_pdrop
        self.impl: AttnImpl = impl
        self.use_rel_pe = use_rel_pe and self.local

        def dw_conv(stride: int) -> MaskedConv1D:
            ks = stride + 1 if stride > 1 else 3
            # the release strides every depthwise conv by the key/value stride (equal to the query one in practice)
            return MaskedConv1D(n_embd, n_embd, ks, stride=n_kv_stride, padding=ks // 2, groups=n_embd, bias=False)

        self.query_conv = dw_conv(n_qx_stride)
        self.query_norm = LayerNorm(n_embd)
        self.key_conv = dw_conv(n_kv_stride)
        self.key_norm = LayerNorm(n_embd)
        self.value_conv = dw_conv(n_kv_stride)
        self.value_norm = LayerNorm(n_embd)
        self.key = nn.Conv1d(n_embd, n_embd, 1)
        self.query = nn.Conv1d(n_embd, n_embd, 1)
        self.value = nn.Conv1d(n_embd, n_embd, 1)
        self.attn_drop = nn.Dropout(attn_pdrop)
        self.proj_drop = nn.Dropout(proj_pdrop)
        self.proj = nn.Conv1d(n_embd, n_embd, 1)
        if self.use_rel_pe:
            if window_size % 2 != 1:
                raise ValueError(f"relative position encoding needs an odd window size, got {window_size}")
            self.rel_pe = nn.Parameter(torch.zeros(1, 1, n_head, window_size))
            nn.init.trunc_normal_(self.rel_pe, std=(2.0 / n_embd) ** 0.5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, C, T)``, ``mask (B, 1, T)`` → ``(B, C, T')``, mask ``(B, 1, T')`` with ``T' = T / stride``."""
        q, qx_mask = self.query_conv(x, mask)
        k, kv_mask = self.key_conv(x, mask)
        v, _ = self.value_conv(x, mask)
        q = self.query(self.query_norm(q))
        k = self.key(self.key_norm(k))
        v = self.value(self.value_norm(v))
        q, k, v = (rearrange(z, "b (h d) t -> b h t d", h=self.n_head) for z in (q, k, v))
        p = self.attn_pdrop if self.training else 0.0
        key_mask = kv_mask[:, 0]
        if self.local:
            if q.shape[-2] != k.shape[-2]:
                raise ValueError("local attention needs equal query and key/value strides")
            rel_bias = self.rel_pe[0, 0] if self.use_rel_pe else None
            attend = local_attention_blocked if self.impl == "blocked_sdpa" else local_attention_reference
            out = attend(q, k, v, key_mask, self.window_overlap, rel_bias=rel_bias, dropout_p=p)
        else:
            out = global_attention(q, k, v, key_mask, dropout_p=p)
        out = rearrange(out, "b h t d -> b (h d) t")
        out = self.proj_drop(self.proj(out)) * qx_mask.to(out.dtype)
        return out, qx_mask


class TransformerBlock(nn.Module):
    """Pre-LN transformer block on ``(B, C, T)`` with optional stride-``s`` downsampling.

    ``out = maxpool(x) + DropPath(MHCA(LN(x)))``; ``out = out + DropPath(MLP(LN(out)))``, masked.
    Without autograd the position-wise MLP runs on chunks of ``mlp_chunk`` steps, so its 4x wider
    hidden activation never exists for the whole sequence at once.
    """

    mlp_chunk = 512

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        n_ds_strides: tuple[int, int] = (1, 1),
        n_out: int | None = None,
        n_hidden: int | None = None,
        attn_pdrop: float = 0.0,
        proj_pdrop: float = 0.0,
        path_pdrop: float = 0.0,
        mha_win_size: int = -1,
        use_rel_pe: bool = False,
        attn_impl: AttnImpl = "blocked_sdpa",
    ) -> None:
        super().__init__()
        n_out = n_embd if n_out is None else n_out
        n_hidden = 4 * n_embd if n_hidden is None else n_hidden
        self.n_out = n_out
        self.ln1 = LayerNorm(n_embd)
        self.ln2 = LayerNorm(n_embd)
        self.attn = MaskedMHCA(
            n_embd,
            n_head,
            window_size=mha_win_size,
            n_qx_stride=n_ds_strides[0],
            n_kv_stride=n_ds_strides[1],
            attn_pdrop=attn_pdrop,
            proj_pdrop=proj_pdrop,
            use_rel_pe=use_rel_pe,
            impl=attn_impl,
        )
        s = n_ds_strides[0]
        self.pool_skip: nn.Module = nn.MaxPool1d(s + 1, stride=s, padding=(s + 1) // 2) if s > 1 else nn.Identity()
        self.mlp = nn.Sequential(
            nn.Conv1d(n_embd, n_hidden, 1),
            nn.GELU(),
            nn.Dropout(proj_pdrop),
            nn.Conv1d(n_hidden, n_out, 1),
            nn.Dropout(proj_pdrop),
        )
        if path_pdrop > 0.0:
            self.drop_path_attn: nn.Module = AffineDropPath(n_embd, drop_prob=path_pdrop)
            self.drop_path_mlp: nn.Module = AffineDropPath(n_out, drop_prob=path_pdrop)
        else:
            self.drop_path_attn = nn.Identity()
            self.drop_path_mlp = nn.Identity()

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, pos_embd: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, C, T)``, ``mask (B, 1, T)`` → ``(B, C, T / s)``, ``(B, 1, T / s)``."""
        out, out_mask = self.attn(self.ln1(x), mask)
        m = out_mask.to(out.dtype)
        out = self.pool_skip(x) * m + self.drop_path_attn(out)
        out = out + self.drop_path_mlp(self._mlp(self.ln2(out)) * m)
        if pos_embd is not None:
            out = out + pos_embd * m
        return out, out_mask

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP on ``(B, C, T)``, chunked along time when no gradient is recorded."""
        t = x.shape[-1]
        if torch.is_grad_enabled() or t <= self.mlp_chunk:
            return self.mlp(x)
        out = x.new_empty((x.shape[0], self.n_out, t))
        for i in range(0, t, self.mlp_chunk):
            out[..., i : i + self.mlp_chunk] = self.mlp(x[..., i : i + self.mlp_chunk])
        return out
