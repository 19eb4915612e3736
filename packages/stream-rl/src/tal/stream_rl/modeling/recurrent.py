"""The block-recurrent attention layer: a clip of tokens and a fixed-size state read and write each other.

As the release's ``RecurrentAttentionBlock`` (block-recurrent transformer, Hutchins et al. 2022):
for a clip ``x (B, N, d)`` and the layer's state ``s (B, L, d)`` (zeros at the start of a video),

- ``x`` attends to itself inside a window of ``dilation`` tokens and to the whole state;
- the state attends to itself and to the clip's valid tokens;
- ``x' = FF(P_x [x→s, x→x] + x) + (P_x [...] + x)``;
- ``s' = gate(FF(g), g)`` with ``g = gate(P_s [s→x, s→s], s)``, where the gate is the release's
  "poor man's LSTM" ``s·σ(W_f u + 1) + tanh(W_z u)·σ(W_i u − 1)``.

The new state is returned; the caller detaches it between clips (no backpropagation across clips).
"""

from __future__ import annotations

import torch
from torch import nn

from tal.stream_rl.modeling.attention import MultiHeadAttention, window_mask


class RecurrentStateGate(nn.Module):
    """``gate(u, s) = s * sigmoid(W_f u + 1) + tanh(W_z u) * sigmoid(W_i u - 1)``, all ``(..., d)``.

    ``W_z``, ``W_i`` and ``W_f`` (with biases) are the three row blocks of one ``Linear(d, 3d)``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 3 * dim)

    def forward(self, u: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        z, i, f = self.proj(u).chunk(3, dim=-1)
        return state * torch.sigmoid(f + 1.0) + torch.tanh(z) * torch.sigmoid(i - 1.0)


class FeedForward(nn.Sequential):
    """``d → 4d → d`` MLP with GELU."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__(nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))


class RecurrentAttentionBlock(nn.Module):
    """One clip/state exchange (see the module docstring)."""

    def __init__(self, dim: int, state_len: int, window: int, num_heads: int = 1) -> None:
        super().__init__()
        self.dim = dim
        self.state_len = state_len
        self.window = window
        self.input_self_attn = MultiHeadAttention(dim, num_heads)
        self.state_self_attn = MultiHeadAttention(dim, num_heads)
        self.input_state_cross_attn = MultiHeadAttention(dim, num_heads)
        self.state_input_cross_attn = MultiHeadAttention(dim, num_heads)
        self.proj_gate = RecurrentStateGate(dim)
        self.ff_gate = RecurrentStateGate(dim)
        self.input_proj = nn.Linear(2 * dim, dim, bias=False)
        self.state_proj = nn.Linear(2 * dim, dim, bias=False)
        self.input_ff = FeedForward(dim)
        self.state_ff = FeedForward(dim)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """The state at the start of a video: zeros ``(B, L, d)``."""
        return like.new_zeros(batch, self.state_len, self.dim)

    def forward(
        self, x: torch.Tensor, token_mask: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, N, d)``, ``token_mask (B, N)`` bool, ``state (B, L, d)`` or ``None`` → ``(x', s')``."""
        if state is None:
            state = self.initial_state(x.shape[0], x)
        local = window_mask(x.shape[1], self.window, x.device)
        input_attn = self.input_self_attn(x, x, key_mask=token_mask, allowed=local)
        state_attn = self.state_self_attn(state, state)
        input_cross = self.input_state_cross_attn(x, state)
        state_cross = self.state_input_cross_attn(state, x, key_mask=token_mask)
        projected_input = self.input_proj(torch.cat((input_cross, input_attn), dim=-1))
        projected_state = self.state_proj(torch.cat((state_cross, state_attn), dim=-1))
        input_residual = projected_input + x
        state_residual = self.proj_gate(projected_state, state)
        output = self.input_ff(input_residual) + input_residual
        next_state = self.ff_gate(self.state_ff(state_residual), state_residual)
        return output, next_state


class RecurrentAttentionLayer(nn.Module):
    """The release's ``RecurrentHierarchicalAttentionLayer``: block, then ``fc1 → fc2 → SiLU → dropout``.

    Works on ``(B, d, N)`` like the convolutions around it; padded tokens come out as zeros.
    """

    def __init__(self, dim: int, state_len: int, window: int, num_heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.block = RecurrentAttentionBlock(dim, state_len, window, num_heads)
        self.fc1 = nn.Linear(dim, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.act = nn.SiLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(
        self, x: torch.Tensor, token_mask: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, d, N)``, ``token_mask (B, N)`` bool → ``((B, d, N), new state (B, L, d))``."""
        out, next_state = self.block(x.transpose(1, 2), token_mask, state)
        out = self.dropout(self.act(self.fc2(self.fc1(out))))
        return out.transpose(1, 2) * token_mask[:, None, :].to(out.dtype), next_state
