"""TST, the Temporal Segment Transformer: a segment-level refiner for any frame-level backbone.

One query per segment of the backbone's prediction (runs of its argmax). A query is the segment's
mean-pooled frame feature plus an MLP of its one-hot class, concatenated with a learned label
embedding. The decoder runs cross-attention to frame memory (each segment sees the frames of the
previous, its own and the next segment) → self-attention among all segments → cross-attention to a
second memory; class heads (``n_classes + 1``, the last = no action) and mask embeddings read the
self-attention and the second cross-attention outputs.

The module tree matches ``tst/tst_refiner.py`` of the release (baiyang4/TST-action-segmentation) key
for key. Three of its tensors are never read by the release's forward: the pixel decoder's
``conv_out``, ``cross_attn.norm1``/``cross_attn2.norm1`` and ``self_attn.self_attn`` (an
``nn.MultiheadAttention`` its self-attention does not call). They are kept as buffers (in the state
dict, loaded and saved, not trained) so release checkpoints load with every key used.

Batch size is one video, as in the release (``BackboneWithTST`` loops over a batch).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tal.seg_tst.modeling.frames_last import conv1x1_frames_last, dilated_conv_frames_last
from tal.seg_tst.modeling.segments import (
    Segmentation,
    near_boundaries,
    neighbourhood_pairs,
    paint,
    segment_mean,
    segments_of,
    sinusoid_table,
    sparse_segment_attention,
)


class ReleaseOnlyTensors(nn.Module):
    """Tensors the release declares but never reads, held as buffers: ``{name: shape}``, dotted names nest."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]) -> None:
        super().__init__()
        children: dict[str, dict[str, tuple[int, ...]]] = {}
        for name, shape in shapes.items():
            head, _, rest = name.partition(".")
            if rest:
                children.setdefault(head, {})[rest] = shape
            else:
                self.register_buffer(head, torch.zeros(shape))
        for head, sub in children.items():
            self.add_module(head, ReleaseOnlyTensors(sub))


class DilatedResidualLayer(nn.Module):
    """``x + dropout(conv_in(relu(conv_dilated(x))))`` with a kernel-3 convolution of dilation ``d``."""

    def __init__(self, dilation: int, channels: int) -> None:
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv_in = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.conv_in(F.relu(self.conv_dilated(x))))

    def forward_frames_last(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` on frames-last ``x (B, T, C)``."""
        h = torch.relu_(dilated_conv_frames_last(self.conv_dilated, x))
        return x + self.dropout(conv1x1_frames_last(self.conv_in, h))


class PixelDecoder(nn.Module):
    """TST's frame encoder: a single-stage dilated TCN returning every layer's output ``(B, C, T)``."""

    def __init__(self, channels: int, n_classes: int, n_layers: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv1d(channels, channels, 1)
        self.layers = nn.ModuleList(DilatedResidualLayer(2**i, channels) for i in range(n_layers))
        self.conv_out = ReleaseOnlyTensors({"weight": (n_classes, channels, 1), "bias": (n_classes,)})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.conv_in(x)
        feats = []
        for layer in self.layers:
            out = layer(out)
            feats.append(out)
        return feats

    def forward_frames_last(self, x: torch.Tensor) -> list[torch.Tensor]:
        """:meth:`forward` on frames-last ``x (B, T, C)``: every layer's output ``(B, T, C)``."""
        out = conv1x1_frames_last(self.conv_in, x)
        feats = []
        layers: list[DilatedResidualLayer] = list(self.layers)  # type: ignore[arg-type]
        for layer in layers:
            out = layer.forward_frames_last(out)
            feats.append(out)
        return feats


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class SegmentFrameCrossAttention(nn.Module):
    """Segment queries attend to the frames of their neighbourhood (previous + own + next segment).

    ``tgt + dropout(tgt2_linear(relu(attention)))`` → ``norm2`` → feed-forward → ``norm3``.
    """

    def __init__(self, d_model: int, dropout: float) -> None:
        super().__init__()
        self.tgt2_linear = nn.Linear(d_model, d_model)
        self.linear1 = nn.Linear(d_model, d_model)
        self.linear2 = nn.Linear(d_model, d_model)
        self.norm1 = ReleaseOnlyTensors({"weight": (d_model,), "bias": (d_model,)})
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self,
        tgt: torch.Tensor,
        query_pos: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        pairs: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        """``tgt, query_pos (S, D)``, ``memory, pos (T, D)`` → ``(S, D)``."""
        attended = sparse_segment_attention(tgt + query_pos, memory + pos, memory, pairs[0], pairs[1], tgt.shape[0])
        tgt = self.norm2(tgt + self.dropout2(self.tgt2_linear(F.relu(attended))))
        return self.norm3(tgt + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(tgt))))))


class InterSegmentSelfAttention(nn.Module):
    """Global single-head self-attention among segments without input projections (the release's
    computation): ``softmax((x+p)(x+p)^T / sqrt(D)) x`` → ``conv_out(relu(·))``, residual, ``norm1``,
    feed-forward, ``norm2``."""

    def __init__(self, d_model: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = ReleaseOnlyTensors(
            {
                "in_proj_weight": (3 * d_model, d_model),
                "in_proj_bias": (3 * d_model,),
                "out_proj.weight": (d_model, d_model),
                "out_proj.bias": (d_model,),
            }
        )
        self.linear1 = nn.Linear(d_model, d_model)
        self.linear2 = nn.Linear(d_model, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.conv_out = nn.Conv1d(d_model, d_model, 1)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """``src, pos (S, D)`` → ``(S, D)``."""
        qk = (src + pos)[None, None]  # 4-D: the fused (flash) CPU kernel instead of two large bmm
        attended = F.scaled_dot_product_attention(qk, qk, src[None, None])[0, 0]  # (S, D)
        src2 = F.linear(F.relu(attended), self.conv_out.weight[:, :, 0], self.conv_out.bias)  # the 1x1 conv_out
        src = self.norm1(src + self.dropout1(src2))
        return self.norm2(src + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(src))))))


@dataclass
class TSTOutput:
    """What :class:`TSTRefiner` returns for one video.

    Attributes:
        segment_cls: ``(2, 1, S, n_classes + 1)`` class logits of both decoder outputs (SA, CA2).
        mask_embed: ``(2, 1, S, inner_dim)`` mask embeddings.
        mask_features: ``(1, inner_dim, T)`` the pixel decoder's last layer.
        action_idx: ``(T,)`` the backbone's frame labels the segments come from.
        segments: those segments.

    ``output["segment_cls"]`` etc. work as on the release's dict; ``segment_mask`` is computed on demand.
    """

    segment_cls: torch.Tensor
    mask_embed: torch.Tensor
    mask_features: torch.Tensor
    action_idx: torch.Tensor
    segments: Segmentation

    @property
    def segment_mask(self) -> torch.Tensor:
        """``(2, 1, S, T)`` mask logits ``mask_embed · mask_features``."""
        return torch.einsum("nbsc,bct->nbst", self.mask_embed, self.mask_features)

    def masks_of(self, decoder: int, segment_index: torch.Tensor) -> torch.Tensor:
        """Mask logits ``(M, T)`` of the given segments only, from decoder output ``decoder``."""
        return self.mask_embed[decoder, 0, segment_index] @ self.mask_features[0]

    def __getitem__(self, key: str) -> Any:
        if key in ("segment_cls", "segment_mask", "action_idx"):
            return getattr(self, key)
        raise KeyError(key)

    # -- decoding -----------------------------------------------------------------------------
    def segment_labels(self) -> torch.Tensor:
        """``(S,)`` the last decoder's class per segment, the no-action column excluded."""
        return self.segment_cls[-1, 0, :, :-1].argmax(-1)

    def hardmax_labels(self) -> torch.Tensor:
        """The release's default inference: each backbone segment painted with its refined class ``(T,)``."""
        return paint(self.segments, self.segment_labels())

    def soft_labels(self) -> torch.Tensor:
        """Mask voting: ``argmax_k sum_s softmax(cls)_sk sigmoid(mask)_st`` (no-action column dropped) ``(T,)``."""
        probs = torch.softmax(self.segment_cls[-1, 0, :, :-1], -1)  # (S, K)
        masks = self.masks_of(-1, torch.arange(self.segments.num_segments, device=probs.device)).sigmoid()
        return (probs.T @ masks).argmax(0)

    def hybrid_labels(self, margin: int = 5) -> torch.Tensor:
        """Hardmax inside segments, the backbone's labels within ``margin`` frames of its boundaries."""
        refined = self.hardmax_labels()
        near = near_boundaries(self.segments, margin)
        return torch.where(near, self.action_idx, refined)


class TSTRefiner(nn.Module):
    """The release's ``TSTRefiner(n_classes, feat_dim, inner_dim, sd_dim, n_layers, sa_rate, dropout)``.

    ``forward(frame_features (1, feat_dim, T), frame_predictions (1, n_classes, T))`` → :class:`TSTOutput`.
    ``frame_predictions`` may be logits or probabilities: only their per-frame argmax is used.
    """

    def __init__(
        self,
        n_classes: int,
        feat_dim: int = 64,
        inner_dim: int = 64,
        sd_dim: int = 256,
        n_layers: int = 10,
        sa_rate: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if n_layers < 3:
            raise ValueError(f"TSTRefiner needs n_layers >= 3 (its decoder reads the last three), got {n_layers}")
        self.n_classes = n_classes
        self.feat_dim = feat_dim
        self.inner_dim = inner_dim
        self.sd_dim = sd_dim
        self.sa_rate = sa_rate
        self.hidden_dim = 2 * sd_dim
        h = self.hidden_dim
        self.feat_down = nn.Linear(feat_dim, inner_dim)
        self.pixel_decoder = PixelDecoder(inner_dim, n_classes, n_layers)
        self.pd_proj = MLP(inner_dim, sd_dim, h, 3)
        self.pd_proj2 = MLP(inner_dim, sd_dim, h, 3)
        self.feat_proj = nn.Linear(inner_dim, sd_dim)
        self.onehot_proj = MLP(n_classes, 128, sd_dim, 3)
        self.label_embedding = nn.Embedding(n_classes, sd_dim)
        self.cross_attn = SegmentFrameCrossAttention(h, dropout)
        self.self_attn = InterSegmentSelfAttention(h, dropout)
        self.cross_attn2 = SegmentFrameCrossAttention(h, dropout)
        self.class_head = nn.Linear(h, n_classes + 1)
        self.mask_head = nn.Linear(h, inner_dim)

    def transformer_parameters(self) -> list[nn.Parameter]:
        """Parameters of the attention blocks (the release trains them with ``lr_transformer``)."""
        mods = (self.cross_attn, self.self_attn, self.cross_attn2)
        return [p for m in mods for p in m.parameters()]

    def forward(self, frame_features: torch.Tensor, frame_predictions: torch.Tensor) -> TSTOutput:
        if frame_features.dim() != 3 or frame_features.shape[0] != 1:
            raise ValueError(
                f"TSTRefiner refines one video at a time: frame_features must be (1, feat_dim, T), "
                f"got {tuple(frame_features.shape)}"
            )
        if frame_features.shape[1] != self.feat_dim:
            raise ValueError(f"frame_features have {frame_features.shape[1]} channels, the refiner {self.feat_dim}")
        if frame_predictions.shape[0] != 1 or frame_predictions.shape[-1] != frame_features.shape[-1]:
            raise ValueError(
                f"frame_predictions {tuple(frame_predictions.shape)} do not match frame_features "
                f"{tuple(frame_features.shape)}"
            )
        if frame_features.shape[-1] == 0:
            raise ValueError("cannot refine a video of 0 frames")
        x = self.feat_down(frame_features[0].T)  # (T, inner)
        if torch.is_grad_enabled():
            pd = [f[0].T for f in self.pixel_decoder(x.T.unsqueeze(0))]  # (T, inner) each
        else:  # inference: the pixel decoder runs frames-last (no layout copies)
            pd = [f[0] for f in self.pixel_decoder.forward_frames_last(x.unsqueeze(0))]
        memory1 = self.pd_proj(pd[-3])  # (T, H)
        memory2 = self.pd_proj2(pd[-2])

        action_idx = frame_predictions[0].argmax(0)
        seg = segments_of(action_idx)
        onehot = F.one_hot(seg.labels, self.n_classes).to(x.dtype)
        pooled = segment_mean(self.feat_proj(x), seg) + self.onehot_proj(onehot)
        queries = torch.cat([pooled, self.label_embedding(seg.labels)], 1)  # (S, H)

        frame_pos = sinusoid_table(x.shape[0], self.hidden_dim, x.device).to(x.dtype)
        pairs = neighbourhood_pairs(seg)
        tgt = self.cross_attn(torch.zeros_like(queries), queries, memory1, frame_pos, pairs)
        seg_pos = sinusoid_table(seg.num_segments, self.hidden_dim, x.device).to(x.dtype)
        refined1 = self.self_attn(tgt, seg_pos)
        refined2 = self.cross_attn2(refined1, queries, memory2, frame_pos, pairs)
        refined = torch.stack([refined1, refined2]).unsqueeze(1)  # (2, 1, S, H)
        return TSTOutput(
            segment_cls=self.class_head(refined),
            mask_embed=self.mask_head(refined),
            mask_features=pd[-1].T.unsqueeze(0),
            action_idx=action_idx,
            segments=seg,
        )
