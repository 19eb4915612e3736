"""tal plugin of tal-seg-tst (entry point ``seg-tst`` in the ``tal`` group).

Registers the backbones ``diffact``, ``mstcn`` and ``mstcn++`` (each behind its TST adapter), the refiner
``tst``, the models ``seg-backbone`` (stage 1) and ``backbone-tst`` (stage 2), the datasets
``seg-tst-mstcn`` and ``seg-tst-synthetic-breakfast``, the metric ``seg-compare``, the presets
``seg-tst/{gtea,50salads,breakfast}[-backbone]`` (with splits), the checkpoint layouts of the TST,
DiffAct and MS-TCN releases, the ``tal infer`` runner of both models and the demo ``seg-tst``.
"""

from __future__ import annotations

from tal.core.hookspecs import hookimpl
from tal.core.registry import Registry


@hookimpl
def register_backbones(registry: Registry) -> None:
    from tal.seg_tst.builders import build_diffact, build_mstcn, build_mstcn_pp
    from tal.seg_tst.config import DiffActConfig, MSTCNBackboneConfig, MSTCNPlusPlusBackboneConfig

    registry.add_backbone("diffact", build_diffact, DiffActConfig, "DiffAct (ICCV 2023) behind its TST adapter")
    registry.add_backbone("mstcn", build_mstcn, MSTCNBackboneConfig, "MS-TCN (CVPR 2019) behind its TST adapter")
    registry.add_backbone(
        "mstcn++", build_mstcn_pp, MSTCNPlusPlusBackboneConfig, "MS-TCN++ (TPAMI 2020) behind its TST adapter"
    )


@hookimpl
def register_refiners(registry: Registry) -> None:
    from tal.seg_tst.builders import build_tst
    from tal.seg_tst.config import TSTConfig

    registry.add_refiner("tst", build_tst, TSTConfig, "Temporal Segment Transformer, release-checkpoint compatible")


@hookimpl
def register_models(registry: Registry) -> None:
    from tal.seg_tst.builders import build_backbone_with_tst, build_seg_backbone_model
    from tal.seg_tst.config import BackboneWithTSTConfig, SegBackboneModelConfig

    registry.add_model(
        "seg-backbone", build_seg_backbone_model, SegBackboneModelConfig, "a segmentation backbone alone (stage 1)"
    )
    registry.add_model(
        "backbone-tst", build_backbone_with_tst, BackboneWithTSTConfig, "backbone + TST refiner (stage 2)"
    )


@hookimpl
def register_datasets(registry: Registry) -> None:
    from tal.seg_tst.builders import build_seg_dataset, build_synthetic_breakfast
    from tal.seg_tst.data import SegDatasetConfig, SyntheticBreakfastConfig

    registry.add_dataset(
        "seg-tst-mstcn", build_seg_dataset, SegDatasetConfig, "GTEA/50Salads/Breakfast splits, carved validation"
    )
    registry.add_dataset(
        "seg-tst-synthetic-breakfast",
        build_synthetic_breakfast,
        SyntheticBreakfastConfig,
        "noise features on real Breakfast label sequences (the demo's data)",
    )


@hookimpl
def register_metrics(registry: Registry) -> None:
    from tal.seg_tst.builders import build_seg_compare
    from tal.seg_tst.metric import SegCompareConfig

    registry.add_metric(
        "seg-compare", build_seg_compare, SegCompareConfig, "F1/Edit/Acc of backbone and refined labels"
    )


@hookimpl
def register_presets(registry: Registry) -> None:
    from tal.seg_tst.release.presets import preset_loaders

    for name, (loader, description, splits) in preset_loaders().items():
        registry.add_preset(name, loader, description, splits=splits)


@hookimpl
def register_checkpoint_formats(registry: Registry) -> None:
    from tal.seg_tst.release.checkpoint import register

    register(registry)


@hookimpl
def register_inferencers(registry: Registry) -> None:
    from tal.seg_tst.cli import INFERENCER

    registry.add_inferencer("backbone-tst", INFERENCER, "frame labels of backbone + TST (MS-TCN format, colour bars)")
    registry.add_inferencer("seg-backbone", INFERENCER, "frame labels of a segmentation backbone")


@hookimpl
def register_demos(registry: Registry) -> None:
    from tal.seg_tst.demo import run_demo

    registry.add_demo("seg-tst", run_demo, "MS-TCN vs MS-TCN+TST on synthetic features of real Breakfast labels")
