"""tal plugin of SVTAS-RL (entry point ``stream-rl`` in the ``tal`` group).

Registers the model ``svtas-rl``, the backbones ``stream-features`` and ``stream-conv3d``, the
datasets ``synthetic-from-labels`` and ``synthetic-rgb-segmentation``, the command ``tal stream``,
the presets ``stream-rl/{gtea,50salads,breakfast,egtea}``, the ``tal infer`` runner of ``svtas-rl``
and the demo ``stream-rl``.
"""

from __future__ import annotations

import inspect

from tal.core.hookspecs import hookimpl
from tal.core.registry import Registry


@hookimpl
def register_models(registry: Registry) -> None:
    from tal.stream_rl.config import SVTASRLConfig
    from tal.stream_rl.modeling.meta_arch import build_svtas_rl

    registry.add_model(
        "svtas-rl", build_svtas_rl, SVTASRLConfig, "SVTAS-RL streaming segmentation (block-recurrent head)"
    )


@hookimpl
def register_backbones(registry: Registry) -> None:
    from tal.stream_rl.config import Conv3dBackboneConfig, FeatureBackboneConfig
    from tal.stream_rl.modeling.meta_arch import build_conv3d_backbone, build_feature_backbone

    registry.add_backbone(
        "stream-features",
        build_feature_backbone,
        FeatureBackboneConfig,
        "pre-extracted per-frame features, as they are",
    )
    registry.add_backbone(
        "stream-conv3d",
        build_conv3d_backbone,
        Conv3dBackboneConfig,
        "small (2+1)-D RGB network for end-to-end streaming",
    )


@hookimpl
def register_datasets(registry: Registry) -> None:
    from tal.stream_rl.data import (
        StreamClips,
        StreamClipsConfig,
        SyntheticFromLabels,
        SyntheticFromLabelsConfig,
        SyntheticRGBConfig,
        SyntheticRGBSegmentation,
    )

    registry.add_dataset(
        "stream-clips",
        StreamClips,
        StreamClipsConfig,
        "runs of consecutive clips of another dataset's videos (the release's training items)",
    )
    registry.add_dataset(
        "synthetic-from-labels",
        SyntheticFromLabels,
        SyntheticFromLabelsConfig,
        "real MS-TCN label files with synthetic features",
    )
    registry.add_dataset(
        "synthetic-rgb-segmentation",
        SyntheticRGBSegmentation,
        SyntheticRGBConfig,
        "synthetic RGB videos (3, T, H, W) with frame labels",
    )


@hookimpl
def register_commands(registry: Registry) -> None:
    from tal.stream_rl.cli import STREAM

    registry.add_command("stream", STREAM)


@hookimpl
def register_presets(registry: Registry) -> None:
    from tal.stream_rl.presets import preset_loaders

    takes_splits = "splits" in inspect.signature(registry.add_preset).parameters
    for name, (loader, description, splits) in preset_loaders().items():
        if takes_splits:
            registry.add_preset(name, loader, description, splits=splits)
        else:
            registry.add_preset(name, loader, description)


@hookimpl
def register_inferencers(registry: Registry) -> None:
    from tal.stream_rl.cli import INFERENCER

    registry.add_inferencer("svtas-rl", INFERENCER)


@hookimpl
def register_demos(registry: Registry) -> None:
    from tal.stream_rl.demo import run_demo

    registry.add_demo(
        "stream-rl", run_demo, "supervised vs supervised+RL streaming segmentation on synthetic Breakfast-like data"
    )
