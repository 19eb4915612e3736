"""tal plugin of tal-skeleton-lst (entry point ``skeleton-lst`` in the ``tal`` group).

Registers the models ``ctrgcn`` and ``lst``, the datasets ``ntu-skeleton``, ``nw-ucla`` and
``synthetic-skeleton``, the command ``tal lst``, the presets ``skeleton-lst/<benchmark>-<stream>``,
the checkpoint format ``ctrgcn-release``, the ``tal infer`` runners and the demo ``skeleton-lst``.
"""

from __future__ import annotations

from tal.core.hookspecs import hookimpl
from tal.core.registry import Registry


@hookimpl
def register_models(registry: Registry) -> None:
    from tal.skeleton_lst.config import CTRGCNConfig, LSTConfig
    from tal.skeleton_lst.models import build_ctrgcn, build_lst

    registry.add_model(
        "ctrgcn", build_ctrgcn, CTRGCNConfig, "CTR-GCN (ICCV 2021) skeleton classifier, release-compatible"
    )
    registry.add_model("lst", build_lst, LSTConfig, "CTR-GCN + LST 4-part language supervision, release-compatible")


@hookimpl
def register_datasets(registry: Registry) -> None:
    from tal.skeleton_lst.data.datasets import (
        NTUSkeletonConfig,
        NTUSkeletons,
        NWUCLAConfig,
        NWUCLASkeletons,
        SyntheticSkeletonConfig,
        SyntheticSkeletons,
    )

    registry.add_dataset("ntu-skeleton", NTUSkeletons, NTUSkeletonConfig, "NTU RGB+D 60/120 arrays (release feeder)")
    registry.add_dataset("nw-ucla", NWUCLASkeletons, NWUCLAConfig, "NW-UCLA json files, cross-view (release feeder)")
    registry.add_dataset(
        "synthetic-skeleton", SyntheticSkeletons, SyntheticSkeletonConfig, "parametric motions on the NTU skeleton"
    )


@hookimpl
def register_commands(registry: Registry) -> None:
    from tal.skeleton_lst.cli import LST_COMMAND

    registry.add_command("lst", LST_COMMAND)


@hookimpl
def register_presets(registry: Registry) -> None:
    from tal.skeleton_lst.release.presets import preset_loaders

    for name, (loader, description) in preset_loaders().items():
        registry.add_preset(name, loader, description)


@hookimpl
def register_checkpoint_formats(registry: Registry) -> None:
    from tal.skeleton_lst.release.checkpoint import is_release_checkpoint, release_weights

    registry.add_checkpoint_format(
        "ctrgcn-release", is_release_checkpoint, release_weights, "CTR-GCN / LST release .pt (bare state dict)"
    )


@hookimpl
def register_inferencers(registry: Registry) -> None:
    from tal.skeleton_lst.infer import SkeletonInferencer

    registry.add_inferencer("ctrgcn", SkeletonInferencer())
    registry.add_inferencer("lst", SkeletonInferencer())


@hookimpl
def register_demos(registry: Registry) -> None:
    from tal.skeleton_lst.demo import run_demo

    registry.add_demo("skeleton-lst", run_demo, "train LST on synthetic skeleton motions; joint, bone and ensemble")
