"""ActionFormer (Zhang, Wu, Li, ECCV 2022) for tal: a reimplementation compatible with the release's checkpoints."""

from tal.loc_actionformer.backbone import ConvTransformerBackbone
from tal.loc_actionformer.checkpoint import is_release_checkpoint, release_weights
from tal.loc_actionformer.config import (
    RELEASE_DEFAULTS,
    ActionFormerConfig,
    ActionFormerTestCfg,
    ActionFormerTrainCfg,
    load_official_config,
    official_config_dict,
)
from tal.loc_actionformer.losses import ctr_diou_loss_1d, sigmoid_focal_loss
from tal.loc_actionformer.model import ActionFormer, NMSFn, batch_from_records, build_model

__all__ = [
    "RELEASE_DEFAULTS",
    "ActionFormer",
    "ActionFormerConfig",
    "ActionFormerTestCfg",
    "ActionFormerTrainCfg",
    "ConvTransformerBackbone",
    "NMSFn",
    "batch_from_records",
    "build_model",
    "ctr_diou_loss_1d",
    "is_release_checkpoint",
    "load_official_config",
    "official_config_dict",
    "release_weights",
    "sigmoid_focal_loss",
]
