"""Built-in datasets; :func:`register` adds them to a registry (called by tal-core's own plugin)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tal.core.datasets._collate import IGNORE_INDEX, collate_localization, collate_segmentation, pad_features
from tal.core.datasets._locate import LocatedVideo, locate_videos
from tal.core.datasets.activitynet import ActivityNetFeatures, ActivityNetFeaturesConfig
from tal.core.datasets.mstcn import MSTCNConfig, MSTCNDataset
from tal.core.datasets.synthetic import SyntheticSegmentation, SyntheticSegmentationConfig

if TYPE_CHECKING:
    from tal.core.registry import Registry

__all__ = [
    "IGNORE_INDEX",
    "ActivityNetFeatures",
    "ActivityNetFeaturesConfig",
    "LocatedVideo",
    "MSTCNConfig",
    "MSTCNDataset",
    "SyntheticSegmentation",
    "SyntheticSegmentationConfig",
    "collate_localization",
    "collate_segmentation",
    "locate_videos",
    "pad_features",
    "register",
]


def register(registry: Registry) -> None:
    """Add ``activitynet-features``, ``mstcn`` and ``synthetic-segmentation`` to ``registry``."""
    registry.add_dataset(
        "activitynet-features",
        ActivityNetFeatures,
        config=ActivityNetFeaturesConfig,
        description="ActivityNet-style JSON + per-video features (THUMOS14, ActivityNet, EPIC, Ego4D)",
    )
    registry.add_dataset(
        "mstcn",
        MSTCNDataset,
        config=MSTCNConfig,
        description="MS-TCN layout: features/, groundTruth/, mapping.txt, splits/ (Breakfast, GTEA, 50Salads)",
    )
    registry.add_dataset(
        "synthetic-segmentation",
        SyntheticSegmentation,
        config=SyntheticSegmentationConfig,
        description="deterministic synthetic segmentation videos for tests and demos",
    )
