"""tal plugin of ActionFormer (entry point ``loc-actionformer`` in the ``tal`` group).

Registers the model ``actionformer``, the dataset ``actionformer-features``, the command
``tal actionformer convert``, the ``tal infer`` runner of ``actionformer`` models, the presets
``loc-actionformer/<release config>``, the config and checkpoint formats ``actionformer-release``
(the release's YAML files and ``.pth.tar`` checkpoints load as they are) and the demo
``loc-actionformer``. Modules are imported inside the hooks, so ``tal plugins`` stays fast.
"""

from __future__ import annotations

from tal.core.hookspecs import hookimpl
from tal.core.registry import Registry


@hookimpl
def register_models(registry: Registry) -> None:
    from tal.loc_actionformer.config import ActionFormerConfig
    from tal.loc_actionformer.modeling.meta_arch import build_model

    registry.add_model(
        "actionformer", build_model, ActionFormerConfig, "ActionFormer (ECCV 2022), release-checkpoint compatible"
    )


@hookimpl
def register_datasets(registry: Registry) -> None:
    from tal.loc_actionformer.data import ActionFormerFeatures, ActionFormerFeaturesConfig

    registry.add_dataset(
        "actionformer-features",
        ActionFormerFeatures,
        ActionFormerFeaturesConfig,
        "the release's THUMOS14 / ActivityNet / EPIC-Kitchens / Ego4D loaders (cropping, resizing, grid targets)",
    )


@hookimpl
def register_commands(registry: Registry) -> None:
    from tal.loc_actionformer.cli import ACTIONFORMER

    registry.add_command("actionformer", ACTIONFORMER)


@hookimpl
def register_inferencers(registry: Registry) -> None:
    from tal.loc_actionformer.cli import INFERENCER

    registry.add_inferencer("actionformer", INFERENCER)


@hookimpl
def register_checkpoint_formats(registry: Registry) -> None:
    from tal.loc_actionformer.release.checkpoint import is_release_checkpoint, release_weights

    registry.add_checkpoint_format(
        "actionformer-release",
        is_release_checkpoint,
        release_weights,
        "the release's epoch_*.pth.tar: state_dict / state_dict_ema with DataParallel's module. prefix",
    )


@hookimpl
def register_presets(registry: Registry) -> None:
    from tal.loc_actionformer.release.presets import preset_loaders

    for name, (loader, description) in preset_loaders().items():
        registry.add_preset(name, loader, description)


@hookimpl
def register_demos(registry: Registry) -> None:
    from tal.loc_actionformer.demo import run_demo

    registry.add_demo("loc-actionformer", run_demo, "train a small ActionFormer on synthetic THUMOS-like videos")


@hookimpl
def register_config_formats(registry: Registry) -> None:
    from tal.loc_actionformer.release.translate import is_release_config, translate_release_config

    registry.add_config_format(
        "actionformer-release",
        is_release_config,
        translate_release_config,
        "the release's configs/*.yaml (tal train/eval/config validate read them as they are)",
    )
