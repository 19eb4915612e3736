"""Pydantic configs of the registered metrics (``metric:`` section of an experiment config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, field_validator

from tal.core.config import ComponentConfig
from tal.core.metrics.localization import DEFAULT_TIOU_THRESHOLDS


class DetectionMapConfig(ComponentConfig):
    """``detection-map``: mAP at tIoU thresholds, average mAP and Recall@kx (ActionFormer's evaluator).

    ``tiou_thresholds`` defaults to ActionFormer's THUMOS14 ``np.linspace(0.3, 0.7, 5)`` (0.3 … 0.7; its
    second value is the float 0.39999999999999997). ``label_mode="actionformer"`` reproduces the
    evaluator's renumbering of label ids (see :mod:`tal.core.metrics.localization`); ``dedup_gt``
    drops duplicate / sub-millisecond ground truth as ActionFormer's annotation reader does;
    ``tie_order`` orders tied scores / tIoUs like NumPy's default argsort (the evaluator, on this
    machine) or stably (the same everywhere).
    """

    name: Literal["detection-map"] = "detection-map"
    tiou_thresholds: list[float] = Field(default_factory=lambda: list(DEFAULT_TIOU_THRESHOLDS), min_length=1)
    top_k: list[PositiveInt] = Field(default_factory=lambda: [1, 5])
    label_mode: Literal["actionformer", "exact"] = "actionformer"
    dedup_gt: bool = True
    tie_order: Literal["numpy", "stable"] = "numpy"

    @field_validator("tiou_thresholds")
    @classmethod
    def _thresholds_in_unit_interval(cls, v: list[float]) -> list[float]:
        if any(not 0.0 <= t <= 1.0 for t in v):
            raise ValueError("tIoU thresholds must be in [0, 1]")
        return v


class SegmentationConfig(ComponentConfig):
    """``segmentation``: F1@overlaps, Edit and Acc (MS-TCN's evaluator; ``convention="diffact"`` for DiffAct's).

    The metric scores integer labels. Background is ``background_ids`` when given; otherwise the
    names in ``background`` are looked up in ``class_names`` (index = class id, e.g. ``mapping.txt``),
    or in the class list the caller passes to ``SegmentationMetric.set_class_names`` before the first
    update. The default ``["background"]`` is the evaluators' ``bg_class``: on Breakfast (``SIL``) and
    50Salads it excludes nothing, like the published numbers; ``background: []`` never excludes.
    """

    name: Literal["segmentation"] = "segmentation"
    background: list[str] = Field(default_factory=lambda: ["background"])
    background_ids: list[int] | None = None
    class_names: list[str] | None = None
    overlaps: list[float] = Field(default_factory=lambda: [0.1, 0.25, 0.5], min_length=1)
    convention: Literal["mstcn", "diffact"] = "mstcn"

    @field_validator("overlaps")
    @classmethod
    def _overlaps_in_unit_interval(cls, v: list[float]) -> list[float]:
        if any(not 0.0 < o <= 1.0 for o in v):
            raise ValueError("overlaps must be in (0, 1]")
        return v


class RecognitionConfig(ComponentConfig):
    """``recognition``: top-k accuracy, mean class accuracy and the confusion matrix."""

    name: Literal["recognition"] = "recognition"
    top_k: list[PositiveInt] = Field(default_factory=lambda: [1, 5])
    num_classes: int | None = Field(None, ge=1)
