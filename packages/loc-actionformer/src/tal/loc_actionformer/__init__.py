"""ActionFormer (Zhang, Wu, Li, ECCV 2022) for tal: a reimplementation compatible with the release's checkpoints."""

from tal.loc_actionformer.backbone import ConvTransformerBackbone
from tal.loc_actionformer.checkpoint import load_official_checkpoint, official_state_dict, strip_prefix
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
    "load_official_checkpoint",
    "load_official_config",
    "official_config_dict",
    "official_state_dict",
    "sigmoid_focal_loss",
    "strip_prefix",
]
