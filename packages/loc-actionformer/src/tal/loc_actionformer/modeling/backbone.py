"""ConvTransformer backbone: conv embedding → stem transformers → stride-2 transformer branch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tal.loc_actionformer.config import AttnImpl
from tal.loc_actionformer.modeling.blocks import LayerNorm, MaskedConv1D, TransformerBlock, sinusoid_encoding


class ConvTransformerBackbone(nn.Module):
    """ActionFormer backbone producing a ``1 + arch[2]``-level pyramid.

    ``arch = (#embedding convs, #stem blocks, #branch blocks)``; each branch block downsamples by
    ``scale_factor``. ``mha_win_size`` holds one window per level (``<= 1``: global attention).
    A list ``n_in`` (several concatenated feature streams) adds a 1x1 projection per stream
    (``proj``) whose outputs (``n_embd`` then a list of the same length) are concatenated.
    """

    def __init__(
        self,
        n_in: int | Sequence[int],
        n_embd: int | Sequence[int],
        n_head: int,
        n_embd_ks: int,
        max_len: int,
        arch: tuple[int, int, int] = (2, 2, 5),
        mha_win_size: Sequence[int] = (-1,) * 6,
        scale_factor: int = 2,
        with_ln: bool = False,
        attn_pdrop: float = 0.0,
        proj_pdrop: float = 0.0,
        path_pdrop: float = 0.0,
        use_abs_pe: bool = False,
        use_rel_pe: bool = False,
        attn_impl: AttnImpl = "blocked_sdpa",
    ) -> None:
        super().__init__()
        if len(arch) != 3 or len(mha_win_size) != 1 + arch[2]:
            raise ValueError(f"arch must have 3 entries and mha_win_size 1 + arch[2]; got {arch}, {mha_win_size}")
        self.arch = tuple(arch)
        self.mha_win_size = list(mha_win_size)
        self.max_len = max_len
        self.scale_factor = scale_factor
        self.use_abs_pe = use_abs_pe
        self.use_rel_pe = use_rel_pe
        self.relu = nn.ReLU(inplace=True)

        self.split_in: list[int] | None = None
        if isinstance(n_in, Sequence):
            if not isinstance(n_embd, Sequence) or len(n_embd) != len(n_in):
                raise ValueError("a list input_dim needs a list embd_dim of the same length")
            self.split_in = list(n_in)
            self.proj: nn.ModuleList | None = nn.ModuleList(
                [MaskedConv1D(c0, c1, 1) for c0, c1 in zip(n_in, n_embd, strict=True)]
            )
            n_in = n_embd = sum(n_embd)
        else:
            self.proj = None
        assert isinstance(n_embd, int) and isinstance(n_in, int)
        self.out_channels = n_embd

        self.embd = nn.ModuleList()
        self.embd_norm = nn.ModuleList()
        for idx in range(arch[0]):
            c_in = n_in if idx == 0 else n_embd
            self.embd.append(MaskedConv1D(c_in, n_embd, n_embd_ks, padding=n_embd_ks // 2, bias=not with_ln))
            self.embd_norm.append(LayerNorm(n_embd) if with_ln else nn.Identity())

        if use_abs_pe:
            self.register_buffer("pos_embd", sinusoid_encoding(max_len, n_embd) / n_embd**0.5, persistent=False)

        def block(strides: tuple[int, int], win: int) -> TransformerBlock:
            return TransformerBlock(
                n_embd,
                n_head,
                n_ds_strides=strides,
                attn_pdrop=attn_pdrop,
                proj_pdrop=proj_pdrop,
                path_pdrop=path_pdrop,
                mha_win_size=win,
                use_rel_pe=use_rel_pe,
                attn_impl=attn_impl,
            )

        self.stem = nn.ModuleList([block((1, 1), self.mha_win_size[0]) for _ in range(arch[1])])
        s = scale_factor
        self.branch = nn.ModuleList([block((s, s), self.mha_win_size[1 + i]) for i in range(arch[2])])
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d)) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``x (B, C_in, T)``, ``mask (B, 1, T)`` → features ``[(B, C, T / s**l)]`` and masks ``[(B, 1, T / s**l)]``."""
        t = x.shape[-1]
        if self.proj is not None and self.split_in is not None:
            parts = x.split(self.split_in, dim=1)
            x = torch.cat([p(z, mask)[0] for p, z in zip(self.proj, parts, strict=True)], dim=1)
        for conv, norm in zip(self.embd, self.embd_norm, strict=True):
            x, mask = conv(x, mask)
            x = self.relu(norm(x))
        if self.use_abs_pe:
            pe = self.get_buffer("pos_embd")
            if self.training:
                if t > self.max_len:
                    raise ValueError(f"sequence length {t} exceeds max_len {self.max_len} of the position embedding")
            elif t >= self.max_len:
                pe = F.interpolate(pe, t, mode="linear", align_corners=False)
            x = x + pe[:, :, :t].to(x.dtype) * mask.to(x.dtype)
        for blk in self.stem:
            x, mask = blk(x, mask)
        feats, masks = [x], [mask]
        for blk in self.branch:
            x, mask = blk(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks
