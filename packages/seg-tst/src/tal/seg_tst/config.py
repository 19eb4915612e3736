"""Pydantic configs of everything ``tal.seg_tst`` registers.

Field names follow the releases (DiffAct's ``encoder_params`` / ``decoder_params`` /
``diffusion_params`` / ``loss_weights``, TST's ``inner_dim`` / ``sd_dim`` / ``sa_rate``) so their
settings transcribe one to one. The per-dataset values are in :data:`DIFFACT_PRESETS` and
:data:`TST_PRESETS` (facts of ``default_configs.py`` and ``scripts/train_diffact_tst.sh``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tal.core.config import ComponentConfig, component_field

DatasetName = Literal["gtea", "50salads", "breakfast"]
CondType = Literal["full", "zero", "boundary03-", "boundary05-", "segment=1", "segment=2"]


DEFAULT_COND_TYPES: tuple[CondType, ...] = ("full", "zero", "boundary03-", "segment=1", "segment=1")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# ---------------------------------------------------------------------------------------------
# DiffAct (Liu et al., ICCV 2023)
# ---------------------------------------------------------------------------------------------
class DiffActEncoderParams(_Strict):
    """The ASFormer-style encoder: ``num_layers`` mixed conv/attention layers with dilation ``2**i``."""

    num_layers: int = Field(10, ge=1)
    num_f_maps: int = Field(64, ge=1)
    kernel_size: int = Field(5, ge=1)
    normal_dropout_rate: float = Field(0.5, ge=0, lt=1)
    channel_dropout_rate: float = Field(0.5, ge=0, lt=1)
    temporal_dropout_rate: float = Field(0.5, ge=0, lt=1)
    feature_layer_indices: list[int] = Field(
        default_factory=lambda: [5, 7, 9],
        description="encoder layers concatenated as the decoder condition and TST's frame features; "
        "-1 adds the input features, -2 the encoder's softmax",
    )

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 != 1:
            raise ValueError("the kernel size must be odd")
        return v

    @model_validator(mode="after")
    def _indices(self) -> DiffActEncoderParams:
        if not self.feature_layer_indices:
            raise ValueError("feature_layer_indices must name at least one layer")
        bad = [i for i in self.feature_layer_indices if i < -2 or i >= self.num_layers]
        if bad:
            raise ValueError(f"feature_layer_indices {bad} are not in -2..{self.num_layers - 1}")
        return self


class DiffActDecoderParams(_Strict):
    """The denoising decoder: cross-conditioned conv/attention layers plus a time embedding."""

    num_layers: int = Field(8, ge=1)
    num_f_maps: int = Field(24, ge=1)
    time_emb_dim: int = Field(512, ge=2)
    kernel_size: int = Field(5, ge=1)
    dropout_rate: float = Field(0.1, ge=0, lt=1)

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 != 1:
            raise ValueError("the kernel size must be odd")
        return v


class DiffActDiffusionParams(_Strict):
    """Cosine schedule of ``timesteps`` steps, DDIM sampling with ``sampling_timesteps`` steps."""

    timesteps: int = Field(1000, ge=1)
    sampling_timesteps: int = Field(25, ge=1)
    ddim_sampling_eta: float = Field(1.0, ge=0)
    snr_scale: float = Field(0.5, gt=0)
    cond_types: list[CondType] = Field(default_factory=lambda: list(DEFAULT_COND_TYPES), min_length=1)
    detach_decoder: bool = False

    @model_validator(mode="after")
    def _steps(self) -> DiffActDiffusionParams:
        if self.sampling_timesteps > self.timesteps:
            raise ValueError(f"sampling_timesteps ({self.sampling_timesteps}) > timesteps ({self.timesteps})")
        return self


class DiffActLossWeights(_Strict):
    """Weights of DiffAct's six training losses (the encoder has no boundary loss in the release)."""

    encoder_ce_loss: float = 0.5
    encoder_mse_loss: float = 0.1
    encoder_boundary_loss: float = 0.0
    decoder_ce_loss: float = 0.5
    decoder_mse_loss: float = 0.1
    decoder_boundary_loss: float = 0.1


class DiffActConfig(ComponentConfig):
    """``diffact`` backbone: DiffAct's ``ASDiffusionModel`` (defaults: the GTEA release) behind its TST adapter."""

    name: Literal["diffact"] = "diffact"
    num_classes: int = Field(11, ge=1)
    input_dim: int = Field(2048, ge=1)
    use_instance_norm: bool = False
    encoder_params: DiffActEncoderParams = Field(default_factory=DiffActEncoderParams)
    decoder_params: DiffActDecoderParams = Field(default_factory=DiffActDecoderParams)
    diffusion_params: DiffActDiffusionParams = Field(default_factory=DiffActDiffusionParams)
    loss_weights: DiffActLossWeights = Field(default_factory=DiffActLossWeights)
    soft_label: float | None = Field(1.4, gt=0, description="Gaussian sigma of the soft CE targets (None: hard CE)")
    class_weighting: bool = Field(True, description="hard CE weighted by the training set's class frequencies")
    boundary_smooth: float | None = Field(
        1.0, gt=0, description="Gaussian sigma of the boundary targets of the decoder's boundary loss (None: sharp)"
    )
    eval_seed: int | None = Field(666, description="DDIM noise seed at evaluation (TST's eval_seed; None: random)")

    @property
    def feat_dim(self) -> int:
        """Channels of the concatenated encoder features (the decoder condition, TST's input)."""
        enc = self.encoder_params
        dim = sum(enc.num_f_maps for i in enc.feature_layer_indices if i >= 0)
        if -1 in enc.feature_layer_indices:
            dim += self.input_dim
        if -2 in enc.feature_layer_indices:
            dim += self.num_classes
        return dim

    @classmethod
    def preset(cls, dataset: str, num_classes: int | None = None, **overrides: Any) -> DiffActConfig:
        """The release's configuration of ``dataset`` (``gtea``, ``50salads`` or ``breakfast``)."""
        if dataset not in DIFFACT_PRESETS:
            raise ValueError(f"unknown DiffAct preset {dataset!r}; presets: {', '.join(DIFFACT_PRESETS)}")
        data: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DIFFACT_PRESETS[dataset].items()}
        if num_classes is not None:
            data["num_classes"] = num_classes
        data.update(overrides)
        return cls.model_validate(data)


DIFFACT_PRESETS: dict[str, dict[str, Any]] = {
    # DiffAct default_configs.py (params_gtea / params_50salads / params_breakfast); every split shares it.
    "gtea": {
        "num_classes": 11,
        "encoder_params": {
            "num_layers": 10,
            "num_f_maps": 64,
            "kernel_size": 5,
            "normal_dropout_rate": 0.5,
            "channel_dropout_rate": 0.5,
            "temporal_dropout_rate": 0.5,
            "feature_layer_indices": [5, 7, 9],
        },
        "decoder_params": {
            "num_layers": 8,
            "num_f_maps": 24,
            "time_emb_dim": 512,
            "kernel_size": 5,
            "dropout_rate": 0.1,
        },
        "diffusion_params": {
            "timesteps": 1000,
            "sampling_timesteps": 25,
            "ddim_sampling_eta": 1.0,
            "snr_scale": 0.5,
            "cond_types": ["full", "zero", "boundary03-", "segment=1", "segment=1"],
        },
        "loss_weights": {
            "encoder_ce_loss": 0.5,
            "encoder_mse_loss": 0.1,
            "encoder_boundary_loss": 0.0,
            "decoder_ce_loss": 0.5,
            "decoder_mse_loss": 0.1,
            "decoder_boundary_loss": 0.1,
        },
        "soft_label": 1.4,
        "boundary_smooth": 1.0,
    },
    "50salads": {
        "num_classes": 19,
        "encoder_params": {
            "num_layers": 10,
            "num_f_maps": 64,
            "kernel_size": 5,
            "normal_dropout_rate": 0.5,
            "channel_dropout_rate": 0.5,
            "temporal_dropout_rate": 0.5,
            "feature_layer_indices": [5, 7, 9],
        },
        "decoder_params": {
            "num_layers": 8,
            "num_f_maps": 24,
            "time_emb_dim": 512,
            "kernel_size": 7,
            "dropout_rate": 0.1,
        },
        "diffusion_params": {
            "timesteps": 1000,
            "sampling_timesteps": 25,
            "ddim_sampling_eta": 1.0,
            "snr_scale": 1.0,
            "cond_types": ["full", "zero", "boundary05-", "segment=2", "segment=2"],
        },
        "loss_weights": {
            "encoder_ce_loss": 0.5,
            "encoder_mse_loss": 0.1,
            "encoder_boundary_loss": 0.0,
            "decoder_ce_loss": 0.5,
            "decoder_mse_loss": 0.1,
            "decoder_boundary_loss": 0.1,
        },
        "soft_label": None,
        "boundary_smooth": 20.0,
    },
    "breakfast": {
        "num_classes": 48,
        "encoder_params": {
            "num_layers": 12,
            "num_f_maps": 256,
            "kernel_size": 5,
            "normal_dropout_rate": 0.5,
            "channel_dropout_rate": 0.1,
            "temporal_dropout_rate": 0.1,
            "feature_layer_indices": [7, 8, 9],
        },
        "decoder_params": {
            "num_layers": 8,
            "num_f_maps": 128,
            "time_emb_dim": 512,
            "kernel_size": 5,
            "dropout_rate": 0.1,
        },
        "diffusion_params": {
            "timesteps": 1000,
            "sampling_timesteps": 25,
            "ddim_sampling_eta": 1.0,
            "snr_scale": 0.5,
            "cond_types": ["full", "zero", "boundary03-", "segment=1", "segment=1"],
        },
        "loss_weights": {
            "encoder_ce_loss": 0.5,
            "encoder_mse_loss": 0.025,
            "encoder_boundary_loss": 0.0,
            "decoder_ce_loss": 0.5,
            "decoder_mse_loss": 0.025,
            "decoder_boundary_loss": 0.1,
        },
        "soft_label": 4.0,
        "boundary_smooth": 3.0,
    },
}


# ---------------------------------------------------------------------------------------------
# MS-TCN (Farha & Gall, CVPR 2019) and MS-TCN++ (Li et al., TPAMI 2020)
# ---------------------------------------------------------------------------------------------
class MSTCNBackboneConfig(ComponentConfig):
    """``mstcn`` backbone: ``num_stages`` single-stage TCNs (the first reads features, the rest refine)."""

    name: Literal["mstcn"] = "mstcn"
    num_classes: int = Field(11, ge=1)
    input_dim: int = Field(2048, ge=1)
    num_stages: int = Field(4, ge=1)
    num_layers: int = Field(10, ge=1)
    num_f_maps: int = Field(64, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    mse_weight: float = Field(0.15, ge=0, description="weight of the truncated smoothing loss")

    @property
    def feat_dim(self) -> int:
        return self.num_f_maps


class MSTCNPlusPlusBackboneConfig(ComponentConfig):
    """``mstcn++`` backbone: a dual-dilated prediction-generation stage and ``num_r`` refinement stages."""

    name: Literal["mstcn++"] = "mstcn++"
    num_classes: int = Field(11, ge=1)
    input_dim: int = Field(2048, ge=1)
    num_layers_pg: int = Field(11, ge=1)
    num_layers_r: int = Field(10, ge=1)
    num_r: int = Field(3, ge=0)
    num_f_maps: int = Field(64, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    mse_weight: float = Field(0.15, ge=0)

    @property
    def feat_dim(self) -> int:
        return self.num_f_maps


# ---------------------------------------------------------------------------------------------
# TST (the segment refiner)
# ---------------------------------------------------------------------------------------------
class TSTConfig(ComponentConfig):
    """``tst`` refiner: the release's ``TSTRefiner`` plus its matcher and loss settings."""

    name: Literal["tst"] = "tst"
    n_classes: int = Field(11, ge=1)
    feat_dim: int = Field(192, ge=1, description="channels of the backbone's frame features")
    inner_dim: int = Field(64, ge=1)
    sd_dim: int = Field(256, ge=1)
    n_layers: int = Field(10, ge=3, description="pixel-decoder TCN layers (its last three feed the decoder)")
    sa_rate: int = Field(4, ge=0, description="kept for the release's signature: its local SA mask is disabled")
    dropout: float = Field(0.1, ge=0, lt=1)
    bg_weight: float = Field(0.1, ge=0, description="CE weight of the no-action class")


TST_PRESETS: dict[str, dict[str, Any]] = {
    # scripts/train_diffact_tst.sh: inner_dim and learning rates per dataset; feat_dim from tst/config.py.
    "gtea": {"n_classes": 11, "feat_dim": 192, "inner_dim": 64, "lr": 5e-4, "lr_transformer": 5e-5},
    "50salads": {"n_classes": 19, "feat_dim": 192, "inner_dim": 64, "lr": 5e-4, "lr_transformer": 5e-5},
    "breakfast": {"n_classes": 48, "feat_dim": 768, "inner_dim": 128, "lr": 5e-5, "lr_transformer": 5e-6},
}


# ---------------------------------------------------------------------------------------------
# Post-processing and models
# ---------------------------------------------------------------------------------------------
class PostprocessConfig(_Strict):
    """Frame-label post-processing of the releases: ``purge`` short segments (GTEA, 3 frames) or a
    ``median`` filter (50Salads 30, Breakfast 15), applied at the model's frame rate."""

    type: Literal["none", "purge", "median"] = "none"
    value: int = Field(0, ge=0)


POSTPROCESS_PRESETS: dict[str, dict[str, Any]] = {
    "gtea": {"type": "purge", "value": 3},
    "50salads": {"type": "median", "value": 30},
    "breakfast": {"type": "median", "value": 15},
}


class SegBackboneModelConfig(ComponentConfig):
    """``seg-backbone`` model (stage 1): a registered segmentation backbone trained with its own losses.

    In eval mode it predicts frame labels; ``postprocess`` is applied to them.
    """

    name: Literal["seg-backbone"] = "seg-backbone"
    backbone: component_field("backbones") = Field(default_factory=DiffActConfig)  # type: ignore[valid-type]
    postprocess: PostprocessConfig = Field(default_factory=PostprocessConfig)
    train_offset: Literal["random", "first"] = Field(
        "random", description="sampling offset of a training video when sample_rate > 1 (DiffAct: random)"
    )
    eval_offsets: Literal["all", "first"] = Field(
        "all", description="all: average the sample_rate offsets and restore the full rate as DiffAct does"
    )


class BackboneWithTSTConfig(ComponentConfig):
    """``backbone-tst`` model (stage 2): a backbone (frozen) with the TST refiner on top.

    ``backbone_checkpoint`` is a stage-1 run's checkpoint (``best.pt``) or a release ``release.model``;
    it is loaded when the model is built. Training without it is refused while the backbone is frozen.
    """

    name: Literal["backbone-tst"] = "backbone-tst"
    backbone: component_field("backbones") = Field(default_factory=DiffActConfig)  # type: ignore[valid-type]
    refiner: component_field("refiners") = Field(default_factory=TSTConfig)  # type: ignore[valid-type]
    freeze_backbone: bool = True
    backbone_checkpoint: str | None = None
    backbone_train_mode: bool = Field(
        True,
        description="run the frozen backbone in train mode (dropout on, unseeded DDIM) while TST trains, "
        "as the release does: varied segmentations act as augmentation",
    )
    lr_transformer: float | None = Field(
        None, gt=0, description="learning rate of TST's attention blocks (None: train.optimizer.lr)"
    )
    infer_mode: Literal["hardmax", "soft", "hybrid"] = "hardmax"
    hybrid_margin: int = Field(5, ge=0)
    postprocess: PostprocessConfig = Field(default_factory=PostprocessConfig)
