"""Metrics of tal: localization mAP / Recall@kx, segmentation F1 / Edit / Acc, recognition top-k.

Each metric has a functional API on arrays and a mergeable :class:`~tal.core.protocols.Metric`
object; :func:`register` adds them to a registry as ``detection-map``, ``segmentation`` and
``recognition``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tal.core.metrics.base import MergeableMetric
from tal.core.metrics.configs import DetectionMapConfig, RecognitionConfig, SegmentationConfig
from tal.core.metrics.localization import (
    DetectionMetric,
    LocalizationResult,
    compute_detection_metrics,
    evaluate_detection,
    segment_iou,
)
from tal.core.metrics.recognition import RecognitionMetric, RecognitionResult, evaluate_recognition
from tal.core.metrics.segmentation import (
    SegmentationMetric,
    SegmentationResult,
    evaluate_segmentation,
    extract_segments,
    levenshtein,
)

if TYPE_CHECKING:
    from tal.core.registry import Registry

__all__ = [
    "DetectionMapConfig",
    "DetectionMetric",
    "LocalizationResult",
    "MergeableMetric",
    "RecognitionConfig",
    "RecognitionMetric",
    "RecognitionResult",
    "SegmentationConfig",
    "SegmentationMetric",
    "SegmentationResult",
    "build_detection_metric",
    "build_recognition_metric",
    "build_segmentation_metric",
    "compute_detection_metrics",
    "evaluate_detection",
    "evaluate_recognition",
    "evaluate_segmentation",
    "extract_segments",
    "levenshtein",
    "register",
    "segment_iou",
]


def build_detection_metric(config: DetectionMapConfig) -> DetectionMetric:
    """Localization mAP and Recall@kx (ActivityNet / ActionFormer evaluator)."""
    return DetectionMetric(config.tiou_thresholds, config.top_k, config.label_mode, config.dedup_gt, config.tie_order)


def build_segmentation_metric(config: SegmentationConfig) -> SegmentationMetric:
    """Segmentation F1@overlaps, Edit and Acc (MS-TCN / DiffAct evaluator)."""
    return SegmentationMetric(
        background_ids=config.background_ids,
        background=config.background,
        class_names=config.class_names,
        overlaps=config.overlaps,
        convention=config.convention,
    )


def build_recognition_metric(config: RecognitionConfig) -> RecognitionMetric:
    """Recognition top-k accuracy, mean class accuracy and confusion matrix."""
    return RecognitionMetric(config.top_k, config.num_classes)


def register(registry: Registry) -> None:
    """Add ``detection-map``, ``segmentation`` and ``recognition`` to ``registry``."""
    registry.add_metric("detection-map", build_detection_metric, config=DetectionMapConfig)
    registry.add_metric("segmentation", build_segmentation_metric, config=SegmentationConfig)
    registry.add_metric("recognition", build_recognition_metric, config=RecognitionConfig)
