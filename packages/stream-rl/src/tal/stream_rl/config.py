"""Configs of the components tal-stream-rl registers (model ``svtas-rl``, backbones, datasets).

Defaults are the release's (``config/svtas/svtas-rl/svtas_rl_gtea.py`` of Thinksky5124/SVTAS): the
BRT head with 128 feature maps, 8 encoder layers, 3 decoders of 8 layers, one attention head, a
512-slot state, dropout 0.5, channel masking 0.2; GTEA's clip of 64 frames sampled every 2.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tal.core.config import ComponentConfig, component_field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class FeatureBackboneConfig(ComponentConfig):
    """``stream-features``: pre-extracted per-frame features ``(C, T)`` passed to the head as they are."""

    name: Literal["stream-features"] = "stream-features"
    input_dim: int = Field(2048, ge=1, description="feature channels (I3D: 2048)")


class Conv3dBackboneConfig(ComponentConfig):
    """``stream-conv3d``: small end-to-end RGB network on ``(3, T, H, W)`` frames."""

    name: Literal["stream-conv3d"] = "stream-conv3d"
    in_channels: int = Field(3, ge=1)
    widths: tuple[int, ...] = Field((16, 32, 64, 128), min_length=1, description="channels of each stage")
    temporal_stride: int = Field(2, ge=1, description="sampled frames per output token")
    temporal_stride_stage: int = Field(1, ge=0, description="the stage that strides in time")

    @model_validator(mode="after")
    def _stage(self) -> Conv3dBackboneConfig:
        if self.temporal_stride_stage >= len(self.widths):
            raise ValueError(
                f"temporal_stride_stage {self.temporal_stride_stage} >= number of stages {len(self.widths)}"
            )
        return self


class BRTHeadConfig(_Section):
    """The block-recurrent segmentation head (the release's ``BRTSegmentationHead`` arguments)."""

    num_f_maps: int = Field(128, ge=1)
    encoder_layers: int = Field(8, ge=1)
    decoder_layers: int = Field(8, ge=1)
    num_decoders: int = Field(3, ge=0)
    num_heads: int = Field(1, ge=1)
    state_len: int = Field(512, ge=1, description="slots of each encoder layer's recurrent state")
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout of the recurrent attention layers")
    layer_dropout: float = Field(0.5, ge=0, lt=1, description="dropout after each layer's 1x1 convolution")
    channel_masking_rate: float = Field(0.2, ge=0, lt=1)


Objective = Literal["supervised", "reward_weighted", "reinforce_td", "reinforce_mc"]


class StreamLossConfig(_Section):
    """Training objective.

    - ``supervised``: ``L_sup`` (CE + ``smooth_weight`` × smoothing per clip), pre-training;
    - ``reward_weighted`` (the release): ``loss_weight · L_sup · (beta1 ** Dice + beta2)``, reward without gradient;
    - ``reinforce_td``: ``sup_weight · L_sup`` + REINFORCE per clip with a TD critic baseline;
    - ``reinforce_mc``: ``sup_weight · L_sup`` + REINFORCE with the Monte-Carlo return over the video's clips.
    """

    objective: Objective = "reward_weighted"
    smooth_weight: float = Field(0.15, ge=0)
    loss_weight: float = Field(1.0, ge=0)
    beta1: float = Field(4.0, gt=0)
    beta2: float = -1.0
    dice_smooth: float = Field(1e-5, ge=0)
    dice_exponent: float = Field(2.0, gt=0)
    backbone_loss_weight: float = Field(
        1.0, ge=0, description="CE of the backbone's own per-token classifier (trainable backbones only)"
    )
    sup_weight: float = Field(1.0, ge=0, description="weight of L_sup in the reinforce objectives")
    pg_weight: float = Field(1.0, ge=0)
    value_weight: float = Field(0.5, ge=0)
    gamma: float = Field(0.9, ge=0, le=1)


class SVTASRLConfig(ComponentConfig):
    """``svtas-rl``: backbone → block-recurrent head, run clip by clip with the head's state carried."""

    name: Literal["svtas-rl"] = "svtas-rl"
    num_classes: int = Field(..., ge=2)
    clip_len: int = Field(64, ge=1, description="sampled frames per clip (the release's clip_seg_num)")
    sample_rate: int = Field(2, ge=1, description="frames between two sampled frames")
    backbone: component_field("backbones") = Field(default_factory=FeatureBackboneConfig)  # type: ignore[valid-type]
    head: BRTHeadConfig = Field(default_factory=BRTHeadConfig)
    loss: StreamLossConfig = Field(default_factory=StreamLossConfig)
    backbone_lr_scale: float = Field(0.02, gt=0, description="learning-rate factor of the backbone's parameters")
    train_memory: Literal["video", "clip"] = Field(
        "video",
        description="'video': the state runs through a video's clips in training (detached between clips); "
        "'clip': cleared before every clip, as the release's training loop does after each optimizer step",
    )
    eval_mode: Literal["stream", "offline"] = Field(
        "stream",
        description="evaluation predicts clip by clip as deployed ('stream') or the whole video as one clip "
        "('offline')",
    )
    init_checkpoint: str | None = Field(None, description="weights to start from (e.g. a supervised pre-training run)")
