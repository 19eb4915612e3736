"""pluggy hook specifications of the ``tal`` project.

A plugin is a module named by an entry point of the ``tal`` group (``[project.entry-points.tal]``
in its ``pyproject.toml``) that defines any of these functions, decorated with
:data:`tal.core.hookimpl`. When the registry is loaded (the first ``tal`` command of a process, or
:func:`tal.core.get_registry`), each plugin is imported on its own and each of its hooks is called
once with the :class:`~tal.core.registry.Registry` to add to. A hook that raises, or adds a name
another plugin owns, rolls back everything its plugin added; the plugin is then reported by
``tal plugins`` and the others keep working.

Import heavy modules inside the hook functions, not at the top of the plugin module, so that
``tal plugins`` and ``tal --help`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tal.core.registry import Registry

PROJECT = "tal"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_models(registry: Registry) -> None:
    """Add models: ``registry.add_model(name, factory, config_class, description="")``.

    :param registry: the registry to add to.

    A model is an ``nn.Module`` that returns a dict of losses (with the total as ``"loss"``) in
    training mode and one prediction per video in eval mode (:class:`tal.core.protocols.Model`).
    ``factory(config)`` builds it from its validated config; a factory that builds registered
    sub-components declares a ``registry`` parameter and gets ``factory(config, registry=...)``.
    The config class is a :class:`~tal.core.ComponentConfig` whose ``name`` literal is ``name``.

    Called once per process when the registry loads. Example::

        @hookimpl
        def register_models(registry):
            registry.add_model("my-seg", build_my_seg, MySegConfig)
    """


@hookspec
def register_backbones(registry: Registry) -> None:
    """Add backbones: ``registry.add_backbone(name, factory, config_class, description="")``.

    :param registry: the registry to add to.

    A backbone maps features ``(B, C, T)`` and a mask ``(B, 1, T)`` to features (or a list of
    levels) with an ``out_channels`` attribute (:class:`tal.core.protocols.Backbone`); models
    select one by name with a :func:`~tal.core.component_field` ``("backbones")``.

    Called once per process when the registry loads. Example::

        @hookimpl
        def register_backbones(registry):
            registry.add_backbone("my-tcn", MyTCN, config=MyTCNConfig)
    """


@hookspec
def register_refiners(registry: Registry) -> None:
    """Add refiners: ``registry.add_refiner(name, factory, config_class, description="")``.

    :param registry: the registry to add to.

    A refiner improves a backbone's frame predictions from its frame features
    (:class:`tal.core.protocols.Refiner`), e.g. tal-seg-tst's segment refiner.

    Called once per process when the registry loads. Example::

        @hookimpl
        def register_refiners(registry):
            registry.add_refiner("my-refiner", MyRefiner, config=MyRefinerConfig)
    """


@hookspec
def register_datasets(registry: Registry) -> None:
    """Add datasets: ``registry.add_dataset(name, factory, config_class, description="")``.

    :param registry: the registry to add to.

    A dataset is a map-style dataset with a ``collate`` method returning a dict with
    ``"video_ids"`` and, when annotated, ``"targets"`` (:class:`tal.core.protocols.Dataset`).
    Experiment configs select it under ``data.train``/``val``/``test`` by name.

    Called once per process when the registry loads. Example::

        @hookimpl
        def register_datasets(registry):
            registry.add_dataset("my-videos", MyVideos, config=MyVideosConfig)
    """


@hookspec
def register_metrics(registry: Registry) -> None:
    """Add metrics: ``registry.add_metric(name, factory, config_class, description="")``.

    :param registry: the registry to add to.

    A metric has ``reset()``, ``update(predictions, targets, video_ids)``, ``compute() -> dict``
    and ``merge(other)`` for combining processes (:class:`tal.core.protocols.Metric`).

    Called once per process when the registry loads. Example::

        @hookimpl
        def register_metrics(registry):
            registry.add_metric("frame-error", FrameError, config=FrameErrorConfig)
    """


@hookspec
def register_commands(registry: Registry) -> None:
    """Add ``tal`` subcommands: ``registry.add_command(name, command)``.

    :param registry: the registry to add to.

    ``command`` is a :class:`tal.core.cli.base.Command`: ``add_arguments(parser)`` declares its
    arguments, ``run(args)`` (or ``run(args, registry)``) runs it and returns the exit code; raise a
    :class:`~tal.core.TalError` for bad input (printed as one line, exit code 2).

    Called once per process, before ``tal`` parses its arguments. Example::

        @hookimpl
        def register_commands(registry):
            registry.add_command("hello", Command(help="say hello", add_arguments=add_args, run=run))
    """


@hookspec
def register_demos(registry: Registry) -> None:
    """Add demos run by ``tal demo``: ``registry.add_demo(name, demo, description="")``.

    :param registry: the registry to add to.

    ``demo(out_dir, quick)`` (optionally also ``data`` and ``registry`` parameters) writes its
    outputs under ``out_dir`` and returns a dict of headline numbers printed in the summary;
    ``quick=True`` must finish in seconds (tests run it).

    Called once per process when the registry loads. Example::

        @hookimpl
        def register_demos(registry):
            registry.add_demo("my-method", run_demo, "train a small model on synthetic data")
    """


@hookspec
def register_presets(registry: Registry) -> None:
    """Add named experiment configs: ``registry.add_preset(name, loader, description="", splits=None)``.

    :param registry: the registry to add to.

    ``loader()`` returns a raw experiment dict, as if read from YAML; with ``splits`` (e.g.
    ``(1, 2, 3, 4)``) it is called as ``loader(split=K)``. Names are ``<package>/<setting>`` so that
    ``tal train loc-actionformer/thumos_i3d`` and ``tal train seg-tst/gtea --split 2`` work.

    Called once per process when the registry loads. Example::

        @hookimpl
        def register_presets(registry):
            registry.add_preset("my-method/gtea", load_gtea, "GTEA as published", splits=(1, 2, 3, 4))
    """


@hookspec
def register_config_formats(registry: Registry) -> None:
    """Add foreign config layouts: ``registry.add_config_format(name, detect, translate, description="")``.

    :param registry: the registry to add to.

    Wherever tal reads a config (``tal train``/``eval``/``infer``/``config validate``), a YAML
    mapping that exactly one format's ``detect(data)`` claims is replaced by ``translate(data,
    path)``: the raw tal experiment dict. This is how a method's original config files are used as
    they are (two claimants are an error that names both).

    Called once per process when the registry loads. Example::

        @hookimpl
        def register_config_formats(registry):
            registry.add_config_format("my-release", is_release_yaml, translate_release_yaml)
    """


@hookspec
def register_checkpoint_formats(registry: Registry) -> None:
    """Add checkpoint layouts: ``registry.add_checkpoint_format(name, detect, extract, description="")``.

    :param registry: the registry to add to.

    :func:`tal.core.engine.checkpoint.load_model_weights` (``tal eval --ckpt``, ``tal infer``) loads
    a file with ``torch.load(weights_only=True)`` and asks each format's ``detect(ckpt)``; the one
    that claims it gives ``extract(ckpt, prefer_ema) -> ModelWeights(state_dict, source, strict)``.
    Core's own layouts (tal's ``model``/``ema`` and a bare state dict) are fallbacks, tried only
    when no plugin format claims a file. This is how a method's released checkpoints load as they are.

    Called once per process when the registry loads. Example::

        @hookimpl
        def register_checkpoint_formats(registry):
            registry.add_checkpoint_format("my-release", is_release_ckpt, release_weights)
    """


@hookspec
def register_inferencers(registry: Registry) -> None:
    """Add ``tal infer`` runners: ``registry.add_inferencer(model_name, inferencer, description="")``.

    :param registry: the registry to add to.

    ``tal infer --config C --ckpt K --feat F`` loads the config, builds its model, loads the
    weights, and hands over to the inferencer of the config's model name:
    ``inferencer.add_arguments(parser)`` adds the flags only it uses (they must not clash with the
    common ones), ``inferencer.run(args, model, experiment, registry)`` writes the results and
    returns the exit code.

    Called once per process, before ``tal`` parses its arguments. Example::

        @hookimpl
        def register_inferencers(registry):
            registry.add_inferencer("my-seg", MySegInferencer())
    """
