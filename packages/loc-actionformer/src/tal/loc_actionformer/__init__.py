"""ActionFormer (Zhang, Wu, Li, ECCV 2022) for tal: a reimplementation compatible with the release's
configs and checkpoints.

The public API: the model and its config, the dataset, the post-processing entry points and the
release translation. Importing this package loads torch but no plugin or CLI code.
"""

from tal.loc_actionformer.config import ActionFormerConfig, ActionFormerTestCfg, ActionFormerTrainCfg
from tal.loc_actionformer.data import ActionFormerFeatures, ActionFormerFeaturesConfig, batch_from_records
from tal.loc_actionformer.modeling.backbone import ConvTransformerBackbone
from tal.loc_actionformer.modeling.losses import ctr_diou_loss_1d, sigmoid_focal_loss
from tal.loc_actionformer.modeling.meta_arch import ActionFormer, build_model
from tal.loc_actionformer.postprocess import NMSFn, fuse_class_scores, load_class_scores
from tal.loc_actionformer.release.checkpoint import is_release_checkpoint, release_weights
from tal.loc_actionformer.release.translate import (
    RELEASE_DEFAULTS,
    experiment_from_release,
    model_config_from_release,
    release_config_dict,
)

__all__ = [
    "RELEASE_DEFAULTS",
    "ActionFormer",
    "ActionFormerConfig",
    "ActionFormerFeatures",
    "ActionFormerFeaturesConfig",
    "ActionFormerTestCfg",
    "ActionFormerTrainCfg",
    "ConvTransformerBackbone",
    "NMSFn",
    "batch_from_records",
    "build_model",
    "ctr_diou_loss_1d",
    "experiment_from_release",
    "fuse_class_scores",
    "is_release_checkpoint",
    "load_class_scores",
    "model_config_from_release",
    "release_config_dict",
    "release_weights",
    "sigmoid_focal_loss",
]
