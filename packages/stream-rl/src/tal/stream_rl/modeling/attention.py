"""Multi-head attention of the block-recurrent head: rotary positions, windowed and padding masks.

As the release's ``MultiHeadAttention``: linear projections of query, key and value, rotary position
embedding on queries and keys (on the first ``min(32, d_head)`` channels of each head, each sequence
numbered from 0), scaled dot-product softmax attention, heads concatenated without an output
projection. Keys and values come from one ``Linear(d, 2d)``; the attention itself is
``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoFormer, "rotate half" layout) on the first ``dim`` channels.

    Channels ``i`` and ``i + dim/2`` of position ``p`` are rotated by the angle ``p * base^(-2i / dim)``;
    channels past ``dim`` are left unchanged. After rotation, ``q_p · k_r`` depends on ``p - r`` only.
    The cosine and sine tables are cached per length, device and dtype (the last :attr:`MAX_TABLES`).
    """

    inv_freq: torch.Tensor
    MAX_TABLES = 8

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"rotary dimension must be even, got {dim}")
        self.dim = dim
        self.register_buffer(
            "inv_freq", base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim), persistent=False
        )
        self._tables: dict[tuple[int, torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, n: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos, sin`` of shape ``(n, dim / 2)``."""
        key = (n, device, dtype)
        if key not in self._tables:
            if len(self._tables) >= self.MAX_TABLES:  # offline runs of many lengths: keep the newest only
                self._tables.pop(next(iter(self._tables)))
            angles = torch.arange(n, device=device, dtype=torch.float32)[:, None] * self.inv_freq.to(device)[None, :]
            self._tables[key] = (angles.cos().to(dtype), angles.sin().to(dtype))
        return self._tables[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate ``x (..., N, D)`` by positions ``0 .. N-1`` along dimension ``-2``."""
        if self.dim == 0:
            return x
        cos, sin = self.tables(x.shape[-2], x.device, x.dtype)
        half = self.dim // 2
        x1, x2, rest = x[..., :half], x[..., half : self.dim], x[..., self.dim :]
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)


def window_mask(n: int, window: int, device: torch.device | None = None) -> torch.Tensor:
    """``(N, N)`` bool: query ``i`` sees key ``j`` iff ``-(window // 2) <= j - i < window - window // 2``.

    A window of ``window`` keys around each query (``window = 1``: itself only; ``2``: itself and the
    previous one; ``4``: two before, itself and one after).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    idx = torch.arange(n, device=device)
    offset = idx[None, :] - idx[:, None]
    return (offset >= -(window // 2)) & (offset < window - window // 2)


class MultiHeadAttention(nn.Module):
    """``(B, N_q, d)`` queries attend to ``(B, N_k, d)`` keys/values; returns ``(B, N_q, d)``."""

    def __init__(self, dim: int, num_heads: int = 1) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.rotary = RotaryEmbedding(min(32, self.head_dim - self.head_dim % 2))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key_value: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention of ``query`` over ``key_value``.

        Args:
            query: ``(B, N_q, d)``.
            key_value: ``(B, N_k, d)``.
            key_mask: ``(B, N_k)`` bool, ``False`` for padded keys (never attended to).
            allowed: ``(N_q, N_k)`` bool pattern (e.g. :func:`window_mask`).

        A query that may see no key at all (only padded queries can: every valid query sees itself
        in self-attention) attends to every key instead of producing NaN; callers mask its output.
        """
        b, nq, _ = query.shape
        q = self.rotary(self._heads(self.query(query)))
        k, v = self.key_value(key_value).chunk(2, dim=-1)
        k = self.rotary(self._heads(k))
        v = self._heads(v)
        visible: torch.Tensor | None = None
        if key_mask is not None and not bool(key_mask.all()):
            visible = key_mask[:, None, None, :]
        if allowed is not None:
            visible = allowed[None, None] if visible is None else visible & allowed[None, None]
        if visible is not None:
            visible = visible | ~visible.any(dim=-1, keepdim=True)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
        return out.transpose(1, 2).reshape(b, nq, self.dim)
