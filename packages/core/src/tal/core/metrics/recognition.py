"""Recognition: top-k accuracy, per-class (mean class) accuracy and the confusion matrix.

Conventions: the predicted class is the first maximum of the scores (``argmax``); a sample is
correct at ``k`` when its class is among the first ``k`` of a stable descending sort of the scores
(ties: lower class index first), so top-1 agrees with ``argmax``. Per-class accuracy is over the
classes that occur in the targets; mean class accuracy is their mean. Values are in percent; with
no samples they are NaN. NaN scores are rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tal.core.metrics.base import MergeableMetric, to_numpy

DEFAULT_TOP_K: tuple[int, ...] = (1, 5)


@dataclass
class RecognitionResult:
    """``topk``: ``{k: percent}``; ``per_class`` ``(K,)`` percent (NaN for classes without samples);
    ``confusion`` ``(K, K)`` counts, rows = true class, columns = predicted class."""

    topk: dict[int, float]
    mean_class_accuracy: float
    per_class: np.ndarray
    confusion: np.ndarray
    num_samples: int

    def as_dict(self) -> dict[str, Any]:
        """``{"top1", "top5", "mean_class_accuracy", "per_class_accuracy", "confusion_matrix", ...}``."""
        out: dict[str, Any] = {f"top{k}": v for k, v in self.topk.items()}
        out.update(
            mean_class_accuracy=self.mean_class_accuracy,
            per_class_accuracy=self.per_class,
            confusion_matrix=self.confusion,
            num_samples=self.num_samples,
        )
        return out


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Position ``(N,)`` of each target in its row's stable descending order of ``scores (N, K)``."""
    n = len(targets)
    own = scores[np.arange(n), targets][:, None]
    before = (scores > own) | ((scores == own) & (np.arange(scores.shape[1])[None, :] < targets[:, None]))
    return before.sum(axis=1)


def evaluate_recognition(
    scores: Any, targets: Any, top_k: Sequence[int] = DEFAULT_TOP_K, num_classes: int | None = None
) -> RecognitionResult:
    """Scores ``(N, K)`` and integer targets ``(N,)`` → :class:`RecognitionResult`."""
    s = to_numpy(scores, np.float64)
    y = to_numpy(targets, np.int64).reshape(-1)
    if s.ndim != 2 or s.shape[0] != len(y):
        raise ValueError(f"scores must be (N, K) with N = {len(y)} targets, got {s.shape}")
    k_cls = int(num_classes if num_classes is not None else s.shape[1])
    if s.shape[1] != k_cls:
        raise ValueError(f"scores have {s.shape[1]} classes, expected {k_cls}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    if len(y) and (y.min() < 0 or y.max() >= k_cls):
        raise ValueError(f"targets must be in [0, {k_cls}), got {y.min()}..{y.max()}")
    ks = [int(k) for k in top_k]
    if any(k < 1 for k in ks):
        raise ValueError(f"top_k values must be >= 1, got {ks}")
    n = len(y)
    pred = s.argmax(axis=1) if n else np.zeros(0, np.int64)
    rank = target_ranks(s, y) if n else np.zeros(0, np.int64)
    nan = float("nan")
    topk = {k: (100.0 * float(np.count_nonzero(rank < k)) / n if n else nan) for k in ks}
    confusion = np.zeros((k_cls, k_cls), np.int64)
    np.add.at(confusion, (y, pred), 1)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = 100.0 * np.diag(confusion) / support
    mca = float(per_class[support > 0].mean()) if n else nan
    return RecognitionResult(topk, mca, per_class, confusion, n)


class RecognitionMetric(MergeableMetric):
    """:class:`~tal.core.protocols.Metric` for recognition: ``update(predictions, targets, video_ids)``
    with one ``(K,)`` score tensor and one ``int`` target per sample. ``compute()`` returns
    :meth:`RecognitionResult.as_dict`."""

    state_names = ("scores", "targets")

    def __init__(
        self, top_k: Sequence[int] = DEFAULT_TOP_K, num_classes: int | None = None, deduplicate: bool = True
    ) -> None:
        self.top_k = [int(k) for k in top_k]
        if any(k < 1 for k in self.top_k):
            raise ValueError(f"top_k values must be >= 1, got {self.top_k}")
        self.num_classes = num_classes
        super().__init__(deduplicate=deduplicate)

    def settings(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "num_classes": self.num_classes}

    def update(self, predictions: Sequence[Any], targets: Sequence[Any], video_ids: Sequence[str]) -> None:
        """Add one batch: ``predictions`` is ``(B, K)`` or a sequence of ``(K,)``; ``targets`` ``(B,)`` ints."""
        if not (len(predictions) == len(targets) == len(video_ids)):
            raise ValueError(f"{len(predictions)} predictions, {len(targets)} targets, {len(video_ids)} video ids")
        scores = [to_numpy(p, np.float64).reshape(-1) for p in predictions]
        labels = [int(to_numpy(t).reshape(-1)[0]) for t in targets]
        self._append(video_ids, scores=scores, targets=labels)

    def result(self) -> RecognitionResult:
        rec = self.records()
        if rec["scores"]:
            scores = np.stack(rec["scores"])
        else:
            scores = np.zeros((0, self.num_classes or 0))
        return evaluate_recognition(scores, np.array(rec["targets"], np.int64), self.top_k, self.num_classes)

    def compute(self) -> dict[str, Any]:
        """``{"top1", "top5", "mean_class_accuracy", ...}`` in percent."""
        return self.result().as_dict()
