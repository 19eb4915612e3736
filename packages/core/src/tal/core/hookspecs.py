"""pluggy hook specifications of the ``tal`` project.

A plugin is a module exposed through the ``tal`` entry-point group that defines any of these
functions decorated with :data:`tal.core.hookimpl`. Each hook receives the
:class:`~tal.core.registry.Registry` to add to, e.g.::

    from tal.core import hookimpl

    @hookimpl
    def register_backbones(registry):
        registry.add_backbone("my-tcn", MyTCN, config=MyTCNConfig)
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
    """Add models (``registry.add_model``)."""


@hookspec
def register_backbones(registry: Registry) -> None:
    """Add backbones (``registry.add_backbone``)."""


@hookspec
def register_refiners(registry: Registry) -> None:
    """Add refiners (``registry.add_refiner``)."""


@hookspec
def register_datasets(registry: Registry) -> None:
    """Add datasets (``registry.add_dataset``)."""


@hookspec
def register_metrics(registry: Registry) -> None:
    """Add metrics (``registry.add_metric``)."""


@hookspec
def register_commands(registry: Registry) -> None:
    """Add ``tal`` subcommands (``registry.add_command``)."""


@hookspec
def register_demos(registry: Registry) -> None:
    """Add demos run by ``tal demo`` (``registry.add_demo``)."""


@hookspec
def register_presets(registry: Registry) -> None:
    """Add named experiment presets, e.g. ``loc-actionformer/thumos_i3d`` (``registry.add_preset``)."""


@hookspec
def register_config_formats(registry: Registry) -> None:
    """Add foreign config layouts that ``tal train``/``eval`` read, e.g. a method's original YAML files
    (``registry.add_config_format``)."""
