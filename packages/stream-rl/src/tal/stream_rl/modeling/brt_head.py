"""The block-recurrent segmentation head (the release's ``BRTSegmentationHead``).

An ASFormer-shaped encoder whose attention is the block-recurrent layer (each encoder layer keeps a
state across the clips of a video), followed by ``num_decoders`` convolutional decoders that refine
the previous stage's softmax. Layer ``i`` (of encoder and decoders) uses dilation ``2^i``: a dilated
3-tap convolution, and in the encoder an attention window of ``2^i`` tokens.

Encoder layer: ``out = ReLU(DilatedConv(x))``; ``out = Attn(InstanceNorm(out)) + out``;
``x + Dropout(Conv1x1(out))``, masked. Decoder layer: the same without attention. The encoder's
input goes through ``Dropout2d`` (whole channels dropped, ``channel_masking_rate``) first. Dropouts:
``dropout`` in the attention layers, ``layer_dropout`` after every layer's 1x1 convolution (the
release's ``nn.Dropout()``, p = 0.5).

The head works on tokens; :meth:`BRTHead.forward` returns the stage scores per token, the caller
repeats them to frames (:mod:`tal.stream_rl.clips`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tal.stream_rl.modeling.recurrent import RecurrentAttentionLayer

HeadState = list[torch.Tensor]
"""One ``(B, state_len, num_f_maps)`` tensor per encoder layer."""


class ConvFeedForward(nn.Module):
    """ASFormer's ``ConvFeedForward``: ``Conv1d(k=3, dilation)`` with zero "same" padding, then ReLU.

    Computed as one matrix product over the three shifted copies of the input (PyTorch's CPU
    convolution has no fast path for dilated 1-D kernels); the weights are an ``nn.Conv1d``'s.
    """

    def __init__(self, dilation: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, N)`` → ``(B, C_out, N)``."""
        d, n = self.dilation, x.shape[-1]
        padded = F.pad(x, (d, d))
        taps = torch.stack((padded[..., :n], padded[..., d : d + n], padded[..., 2 * d : 2 * d + n]), dim=2)
        weight = self.conv.weight.reshape(self.conv.out_channels, -1)  # (C_out, C_in * 3), index c * 3 + tap
        out = torch.matmul(weight, taps.reshape(x.shape[0], -1, n))
        if self.conv.bias is not None:
            out = out + self.conv.bias[:, None]
        return F.relu(out)


class EncoderLayer(nn.Module):
    """The release's ``AttModule(stage='encoder')``."""

    def __init__(
        self, dilation: int, channels: int, state_len: int, num_heads: int, dropout: float, layer_dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.feed_forward = ConvFeedForward(dilation, channels, channels)
        self.instance_norm = nn.InstanceNorm1d(channels, track_running_stats=False)
        self.att_layer = RecurrentAttentionLayer(channels, state_len, dilation, num_heads, dropout)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(layer_dropout)

    def forward(
        self, x: torch.Tensor, token_mask: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.feed_forward(x)
        attended, next_state = self.att_layer(self.instance_norm(out), token_mask, state)
        out = self.dropout(self.conv_1x1(attended + out))
        return (x + out) * token_mask[:, None, :].to(x.dtype), next_state


class DecoderLayer(nn.Module):
    """The release's ``AttModule(stage='decoder')``: no attention."""

    def __init__(self, dilation: int, channels: int, layer_dropout: float = 0.5) -> None:
        super().__init__()
        self.feed_forward = ConvFeedForward(dilation, channels, channels)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(layer_dropout)

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.conv_1x1(self.feed_forward(x)))
        return (x + out) * token_mask[:, None, :].to(x.dtype)


class Encoder(nn.Module):
    """``(B, D_in, N)`` → scores ``(B, K, N)``, features ``(B, F, N)`` and the new per-layer states."""

    def __init__(
        self,
        num_layers: int,
        num_f_maps: int,
        input_dim: int,
        num_classes: int,
        channel_masking_rate: float,
        state_len: int,
        num_heads: int,
        dropout: float,
        layer_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.channel_dropout = nn.Dropout2d(p=channel_masking_rate)
        self.conv_1x1 = nn.Conv1d(input_dim, num_f_maps, 1)
        self.layers = nn.ModuleList(
            EncoderLayer(2**i, num_f_maps, state_len, num_heads, dropout, layer_dropout) for i in range(num_layers)
        )
        self.conv_out = nn.Conv1d(num_f_maps, num_classes, 1)

    def forward(
        self, x: torch.Tensor, token_mask: torch.Tensor, state: HeadState | None
    ) -> tuple[torch.Tensor, torch.Tensor, HeadState]:
        if self.channel_dropout.p > 0:
            x = self.channel_dropout(x.unsqueeze(2)).squeeze(2)
        feature = self.conv_1x1(x)
        new_state: HeadState = []
        for i, layer in enumerate(self.layers):
            feature, s = layer(feature, token_mask, None if state is None else state[i])
            new_state.append(s)
        return self.conv_out(feature) * token_mask[:, None, :].to(feature.dtype), feature, new_state


class Decoder(nn.Module):
    """Refines a stage: masked softmax scores ``(B, K, N)`` → new scores ``(B, K, N)``."""

    def __init__(self, num_layers: int, num_f_maps: int, num_classes: int, layer_dropout: float = 0.5) -> None:
        super().__init__()
        self.conv_1x1 = nn.Conv1d(num_classes, num_f_maps, 1)
        self.layers = nn.ModuleList(DecoderLayer(2**i, num_f_maps, layer_dropout) for i in range(num_layers))
        self.conv_out = nn.Conv1d(num_f_maps, num_classes, 1)

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        feature = self.conv_1x1(x)
        for layer in self.layers:
            feature = layer(feature, token_mask)
        return self.conv_out(feature) * token_mask[:, None, :].to(feature.dtype)


class BRTHead(nn.Module):
    """Block-recurrent segmentation head: ``(B, D_in, N)`` tokens → ``(1 + num_decoders, B, K, N)`` scores.

    ``forward`` takes and returns the encoder states explicitly (``None`` = start of a video), so the
    same head serves training, offline evaluation and streaming without hidden module state.
    """

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        num_f_maps: int = 128,
        encoder_layers: int = 8,
        decoder_layers: int = 8,
        num_decoders: int = 3,
        num_heads: int = 1,
        state_len: int = 512,
        dropout: float = 0.5,
        channel_masking_rate: float = 0.2,
        layer_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_f_maps = num_f_maps
        self.encoder = Encoder(
            encoder_layers,
            num_f_maps,
            input_dim,
            num_classes,
            channel_masking_rate,
            state_len,
            num_heads,
            dropout,
            layer_dropout,
        )
        self.decoders = nn.ModuleList(
            Decoder(decoder_layers, num_f_maps, num_classes, layer_dropout) for _ in range(num_decoders)
        )

    def forward(
        self, x: torch.Tensor, token_mask: torch.Tensor, state: HeadState | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, HeadState]:
        """Scores of one clip.

        Args:
            x: ``(B, D_in, N)`` token features.
            token_mask: ``(B, N)`` bool, ``False`` for padded tokens.
            state: the encoder states after the previous clip of the same videos, or ``None``.

        Returns:
            scores ``(1 + num_decoders, B, K, N)`` (zero at padded tokens), the encoder's last features
            ``(B, num_f_maps, N)`` and the new states (with gradient; detach before the next clip).
        """
        out, feature, new_state = self.encoder(x, token_mask, state)
        maskf = token_mask[:, None, :].to(out.dtype)
        stages = [out]
        for decoder in self.decoders:
            out = decoder(F.softmax(out, dim=1) * maskf, token_mask)
            stages.append(out)
        return torch.stack(stages), feature, new_state
