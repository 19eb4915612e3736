"""Pydantic config of the ActionFormer model (``model:`` of an experiment config, name ``actionformer``).

Field names and defaults mirror the release's ``model`` section (plus the ``input_dim``,
``num_classes``, ``max_seq_len``, ``train_cfg`` and ``test_cfg`` it copies in), so a release config
maps onto :class:`ActionFormerConfig` one to one (see :mod:`tal.loc_actionformer.release.translate`).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tal.core.config import ComponentConfig

#: the local-attention kernel: blocked ``scaled_dot_product_attention`` (fast) or an explicit band mask
AttnImpl = Literal["blocked_sdpa", "band_mask"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ActionFormerTrainCfg(_Strict):
    """Training-time settings (the release's ``train_cfg``)."""

    center_sample: Literal["radius", "none"] = "radius"
    center_sample_radius: float = Field(1.5, gt=0)
    loss_weight: float = 1.0  # <= 0: balance the regression loss automatically
    cls_prior_prob: float = Field(0.01, ge=0, lt=1)
    init_loss_norm: float = Field(2000.0, gt=0)
    clip_grad_l2norm: float = -1.0  # read by the trainer, not the model
    head_empty_cls: list[int] = Field(default_factory=list)
    head_empty_cls_from: str = Field(
        "",
        description="an annotation file (ActivityNet JSON): the classes no annotation in it uses are added to "
        "head_empty_cls when the model is built (the release's EPIC-Kitchens rule; ours, not a release key); "
        "empty: none",
    )
    dropout: float = Field(0.0, ge=0, lt=1)
    droppath: float = Field(0.1, ge=0, lt=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)


class ActionFormerTestCfg(_Strict):
    """Inference settings (the release's ``test_cfg``)."""

    pre_nms_thresh: float = 0.001
    pre_nms_topk: int = Field(5000, ge=1)
    iou_threshold: float = 0.1
    min_score: float = 0.01
    max_seg_num: int = Field(1000, ge=1)
    nms_method: Literal["soft", "hard", "none"] = "soft"
    nms_sigma: float = 0.5
    duration_thresh: float = 0.05
    multiclass_nms: bool = True
    ext_score_file: str | None = None  # video-level class scores fused with the detections at inference
    voting_thresh: float = 0.75


DEFAULT_REGRESSION_RANGE: list[tuple[float, float]] = [
    (0, 4),
    (4, 8),
    (8, 16),
    (16, 32),
    (32, 64),
    (64, 10000),
]


class ActionFormerConfig(ComponentConfig):
    """ActionFormer (``LocPointTransformer``) model config with the release defaults.

    Fields of ours (not in the release):

    - ``attn_impl``: the local-attention kernel, ``"blocked_sdpa"`` (fast, default) or
      ``"band_mask"`` (explicit band-mask reference); both compute the same thing.
    - ``infer_window``: inputs longer than this many feature steps are run at inference as
      overlapping windows whose candidates are merged before NMS (bounded memory); ``None`` runs
      every input whole, padded to a multiple of ``max_div_factor`` as the release does.
    - ``infer_context``: steps of context on each side of a window's core; ``None`` uses the
      network's receptive radius (then the merged detections equal those of a whole run).
    """

    name: Literal["actionformer"] = "actionformer"
    backbone_type: Literal["convTransformer"] = "convTransformer"
    fpn_type: Literal["identity"] = "identity"
    backbone_arch: tuple[int, int, int] = (2, 2, 5)
    scale_factor: int = Field(2, ge=2)
    regression_range: list[tuple[float, float]] = Field(default_factory=lambda: list(DEFAULT_REGRESSION_RANGE))
    n_head: int = Field(4, ge=1)
    n_mha_win_size: int | list[int] = -1
    embd_kernel_size: int = 3
    embd_dim: int | list[int] = 512
    embd_with_ln: bool = True
    fpn_dim: int = 512
    fpn_with_ln: bool = True
    fpn_start_level: int = Field(0, ge=0)
    head_dim: int = 512
    head_kernel_size: int = 3
    head_num_layers: int = Field(3, ge=1)
    head_with_ln: bool = True
    max_buffer_len_factor: float = Field(6.0, gt=0)
    use_abs_pe: bool = False
    use_rel_pe: bool = False
    input_dim: int | list[int] = 2304
    num_classes: int = Field(97, ge=1)
    max_seq_len: int = Field(2304, ge=1)
    train_cfg: ActionFormerTrainCfg = Field(default_factory=ActionFormerTrainCfg)
    test_cfg: ActionFormerTestCfg = Field(default_factory=ActionFormerTestCfg)
    attn_impl: AttnImpl = "blocked_sdpa"
    infer_window: int | None = Field(None, ge=1)
    infer_context: int | None = Field(None, ge=0)

    @property
    def fpn_strides(self) -> list[int]:
        """Stride (in input steps) of each pyramid level the heads see."""
        return [self.scale_factor**i for i in range(self.fpn_start_level, self.backbone_arch[2] + 1)]

    @property
    def mha_win_sizes(self) -> list[int]:
        """Attention window of each backbone level (stem, then every branch block)."""
        n = 1 + self.backbone_arch[2]
        w = self.n_mha_win_size
        return [w] * n if isinstance(w, int) else list(w)

    @property
    def max_div_factor(self) -> int:
        """Inputs longer than ``max_seq_len`` are padded at inference to a multiple of this."""
        strides = [self.scale_factor**i for i in range(self.backbone_arch[2] + 1)]
        return max(s * (w // 2) * 2 if w > 1 else s for s, w in zip(strides, self.mha_win_sizes, strict=True))

    @property
    def total_embd_dim(self) -> int:
        return self.embd_dim if isinstance(self.embd_dim, int) else sum(self.embd_dim)

    @model_validator(mode="after")
    def _check(self) -> ActionFormerConfig:
        n_levels = self.backbone_arch[2] + 1
        if isinstance(self.n_mha_win_size, list) and len(self.n_mha_win_size) != n_levels:
            raise ValueError(f"n_mha_win_size has {len(self.n_mha_win_size)} entries, needs 1 + backbone_arch[2]")
        if self.fpn_start_level >= n_levels:
            raise ValueError(f"fpn_start_level {self.fpn_start_level} >= number of levels {n_levels}")
        if len(self.regression_range) != len(self.fpn_strides):
            raise ValueError(
                f"regression_range has {len(self.regression_range)} entries for {len(self.fpn_strides)} levels"
            )
        strides = [self.scale_factor**i for i in range(n_levels)]
        need = 1
        for s, w in zip(strides, self.mha_win_sizes, strict=True):
            need = math.lcm(need, s * (w // 2) * 2 if w > 1 else s)
        if self.max_seq_len % need != 0:
            lower, upper = self.max_seq_len // need * need, -(-self.max_seq_len // need) * need
            raise ValueError(
                f"max_seq_len {self.max_seq_len} is not divisible by {need} (each pyramid level's stride x its "
                f"attention window, strides {strides}, windows {self.mha_win_sizes}); set max_seq_len to a "
                f"multiple of {need}, e.g. {upper}" + (f" or {lower}" if lower > 0 else "")
            )
        if isinstance(self.input_dim, list) != isinstance(self.embd_dim, list):
            raise ValueError("input_dim and embd_dim must both be ints or both lists (one entry per feature stream)")
        if self.fpn_type == "identity" and self.total_embd_dim != self.fpn_dim:
            raise ValueError(f"the identity neck needs fpn_dim == embd_dim, got {self.fpn_dim} vs {self.embd_dim}")
        if self.total_embd_dim % self.n_head != 0:
            raise ValueError(f"embd_dim {self.total_embd_dim} is not divisible by n_head {self.n_head}")
        if self.infer_window is not None and self.infer_window % self.max_div_factor != 0:
            raise ValueError(
                f"infer_window {self.infer_window} must be a multiple of the largest stride x window "
                f"({self.max_div_factor})"
            )
        if any(not 0 <= c < self.num_classes for c in self.train_cfg.head_empty_cls):
            raise ValueError(f"head_empty_cls {self.train_cfg.head_empty_cls} out of range for {self.num_classes}")
        return self
