"""The plugin module named by the ``tal`` entry point: one function per hook."""

from __future__ import annotations

from tal.core import Registry, hookimpl
from tal_example_plugin.backbone import DilatedTCN, DilatedTCNConfig
from tal_example_plugin.dataset import SineDataset, SineDatasetConfig
from tal_example_plugin.metric import FrameErrorConfig, FrameErrorRate


@hookimpl
def register_backbones(registry: Registry) -> None:
    registry.add_backbone("example-tcn", DilatedTCN, config=DilatedTCNConfig)


@hookimpl
def register_datasets(registry: Registry) -> None:
    registry.add_dataset("example-sine", SineDataset, config=SineDatasetConfig)


@hookimpl
def register_metrics(registry: Registry) -> None:
    registry.add_metric("example-frame-error", FrameErrorRate, config=FrameErrorConfig)
