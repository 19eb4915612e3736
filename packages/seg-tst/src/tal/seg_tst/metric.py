"""``seg-compare``: core's segmentation metric (F1@{10,25,50}, Edit, Acc; MS-TCN's evaluator) applied to
every named prediction a model returns, e.g. ``{"backbone": labels, "refined": labels}`` →
``{"backbone": {"F1@10": …}, "refined": {…}}``. A plain label tensor is scored under ``"labels"``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from tal.core.config import ComponentConfig
from tal.core.metrics.segmentation import SegmentationMetric


class SegCompareConfig(ComponentConfig):
    """Config of :class:`SegCompareMetric` (the fields of core's ``segmentation`` metric)."""

    name: Literal["seg-compare"] = "seg-compare"
    background: list[str] = Field(default_factory=lambda: ["background"])
    background_ids: list[int] | None = None
    overlaps: list[float] = Field(default_factory=lambda: [0.1, 0.25, 0.5], min_length=1)
    convention: Literal["mstcn", "diffact"] = "mstcn"


class SegCompareMetric:
    """One :class:`~tal.core.metrics.segmentation.SegmentationMetric` per prediction name."""

    higher_is_better = True

    def __init__(self, config: SegCompareConfig | None = None) -> None:
        self.config = config or SegCompareConfig()
        self.class_names: list[str] | None = None
        self.metrics: dict[str, SegmentationMetric] = {}

    def _metric(self, key: str) -> SegmentationMetric:
        if key not in self.metrics:
            c = self.config
            self.metrics[key] = SegmentationMetric(
                background_ids=c.background_ids,
                background=c.background,
                class_names=self.class_names,
                overlaps=c.overlaps,
                convention=c.convention,
            )
        return self.metrics[key]

    def set_class_names(self, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        for m in self.metrics.values():
            m.set_class_names(class_names)

    def reset(self) -> None:
        self.metrics = {}

    def update(self, predictions: Sequence[Any], targets: Sequence[Any], video_ids: Sequence[str]) -> None:
        grouped: dict[str, tuple[list[Any], list[Any], list[str]]] = {}
        for pred, target, vid in zip(predictions, targets, video_ids, strict=True):
            named = pred if isinstance(pred, Mapping) else {"labels": pred}
            for key, labels in named.items():
                p, t, v = grouped.setdefault(str(key), ([], [], []))
                p.append(labels)
                t.append(target)
                v.append(vid)
        for key, (p, t, v) in grouped.items():
            self._metric(key).update(p, t, v)

    def compute(self) -> dict[str, Any]:
        """``{name: {"F1@10", "F1@25", "F1@50", "Edit", "Acc"}}`` in percent (counts left out)."""
        out: dict[str, Any] = {}
        for key, m in self.metrics.items():
            scores = m.compute()
            out[key] = {k: v for k, v in scores.items() if k.startswith("F1@") or k in ("Edit", "Acc")}
        return out

    def merge(self, other: SegCompareMetric) -> None:
        for key, m in other.metrics.items():
            self._metric(key).merge(m)
