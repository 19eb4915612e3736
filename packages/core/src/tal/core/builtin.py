"""tal-core's own plugin: core registers its metrics, datasets, baseline model, commands and demo
through the same hooks as every other package (entry point ``core`` in the ``tal`` group)."""

from __future__ import annotations

from tal.core.hookspecs import hookimpl
from tal.core.registry import Registry


@hookimpl
def register_metrics(registry: Registry) -> None:
    from tal.core import metrics

    metrics.register(registry)


@hookimpl
def register_datasets(registry: Registry) -> None:
    from tal.core import datasets

    datasets.register(registry)


@hookimpl
def register_models(registry: Registry) -> None:
    from tal.core import baselines

    baselines.register(registry)


@hookimpl
def register_backbones(registry: Registry) -> None:
    from tal.core import baselines

    baselines.register_backbones(registry)


@hookimpl
def register_commands(registry: Registry) -> None:
    from tal.core.cli import config_cmd, demo_cmd, infer_cmd, plugins_cmd, score_cmd, train_cmd

    for module in (plugins_cmd, config_cmd, score_cmd, train_cmd, infer_cmd, demo_cmd):
        module.register(registry)


@hookimpl
def register_demos(registry: Registry) -> None:
    from tal.core import demo

    registry.add_demo("core", demo.run_demo, "score sample segmentation annotations with every core metric")


@hookimpl
def register_checkpoint_formats(registry: Registry) -> None:
    from tal.core.engine.checkpoint import bare_state_dict_weights, is_bare_state_dict, is_tal_checkpoint, tal_weights

    registry.add_checkpoint_format(
        "tal", is_tal_checkpoint, tal_weights, "tal's Trainer checkpoints (model, ema, optimizer...)", fallback=True
    )
    registry.add_checkpoint_format(
        "state-dict",
        is_bare_state_dict,
        bare_state_dict_weights,
        "a bare state dict (torch.save(model.state_dict())), `module.` prefix removed",
        fallback=True,
    )
