"""Factories of the registered components (``registry.build`` calls them with their validated config)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from tal.core.errors import ConfigError
from tal.core.registry import Registry
from tal.seg_tst.config import (
    BackboneWithTSTConfig,
    DiffActConfig,
    MSTCNBackboneConfig,
    MSTCNPlusPlusBackboneConfig,
    SegBackboneModelConfig,
    TSTConfig,
)
from tal.seg_tst.data import SegDataset, SegDatasetConfig, SyntheticBreakfast, SyntheticBreakfastConfig
from tal.seg_tst.metric import SegCompareConfig, SegCompareMetric
from tal.seg_tst.modeling.adapters import DiffActAdapter, MSTCNAdapter, check_adapter
from tal.seg_tst.modeling.diffact import DiffAct
from tal.seg_tst.modeling.meta_arch import BackboneWithTST, SegBackboneModel
from tal.seg_tst.modeling.mstcn import MSTCN, MSTCNPlusPlus
from tal.seg_tst.modeling.tst import TSTRefiner
from tal.seg_tst.release.checkpoint import load_backbone_weights

logger = logging.getLogger(__name__)


def build_diffact(config: DiffActConfig) -> DiffActAdapter:
    """DiffAct behind its TST adapter."""
    return DiffActAdapter(DiffAct(config), eval_seed=config.eval_seed)


def build_mstcn(config: MSTCNBackboneConfig) -> MSTCNAdapter:
    """MS-TCN behind its adapter."""
    return MSTCNAdapter(MSTCN(config), config.mse_weight)


def build_mstcn_pp(config: MSTCNPlusPlusBackboneConfig) -> MSTCNAdapter:
    """MS-TCN++ behind its adapter."""
    return MSTCNAdapter(MSTCNPlusPlus(config), config.mse_weight)


def build_tst(config: TSTConfig) -> TSTRefiner:
    """The TST refiner."""
    return TSTRefiner(
        n_classes=config.n_classes,
        feat_dim=config.feat_dim,
        inner_dim=config.inner_dim,
        sd_dim=config.sd_dim,
        n_layers=config.n_layers,
        sa_rate=config.sa_rate,
        dropout=config.dropout,
    )


def _adapter(registry: Registry, config: object) -> torch.nn.Module:
    built = registry.build("backbones", config)
    try:
        check_adapter(built)
    except TypeError as exc:
        raise ConfigError(f"model.backbone: {exc}") from None
    return built


def build_seg_backbone_model(config: SegBackboneModelConfig, registry: Registry) -> SegBackboneModel:
    """Stage 1: the backbone named in ``config.backbone``, trained with its own losses."""
    adapter = _adapter(registry, config.backbone)
    pp = config.postprocess
    return SegBackboneModel(
        adapter,
        (pp.type, pp.value),
        train_offset=config.train_offset,
        eval_offsets=config.eval_offsets,
    )


def build_backbone_with_tst(config: BackboneWithTSTConfig, registry: Registry) -> BackboneWithTST:
    """Stage 2: backbone + refiner; the backbone's weights come from ``config.backbone_checkpoint`` when it exists."""
    adapter = _adapter(registry, config.backbone)
    refiner = registry.build("refiners", config.refiner)
    pp = config.postprocess
    model = BackboneWithTST(
        adapter,
        refiner,
        freeze_backbone=config.freeze_backbone,
        backbone_train_mode=config.backbone_train_mode,
        infer_mode=config.infer_mode,
        hybrid_margin=config.hybrid_margin,
        postprocess=(pp.type, pp.value),
        lr_transformer=config.lr_transformer,
        bg_weight=getattr(config.refiner, "bg_weight", 0.1),
    )
    ckpt = config.backbone_checkpoint
    if ckpt:
        if Path(ckpt).is_file():
            load_backbone_weights(model.protocol.backbone, ckpt, registry)
            model.backbone_ready = True
            logger.info("backbone weights from %s", ckpt)
        else:
            # Not an error here: `tal eval`/`tal infer` load a whole checkpoint afterwards. Training refuses to
            # start on an untrained frozen backbone (BackboneWithTST.training_losses).
            logger.warning("model.backbone_checkpoint %s does not exist; the backbone keeps its initial weights", ckpt)
    return model


def build_seg_dataset(config: SegDatasetConfig) -> SegDataset:
    """MS-TCN-layout dataset with numbered splits and a carved validation subset."""
    return SegDataset(config)


def build_synthetic_breakfast(config: SyntheticBreakfastConfig) -> SyntheticBreakfast:
    """Synthetic features on the real Breakfast label sequences."""
    return SyntheticBreakfast(config)


def build_seg_compare(config: SegCompareConfig) -> SegCompareMetric:
    """Segmentation scores of every named prediction (backbone vs refined)."""
    return SegCompareMetric(config)
