"""Temporal action localization: mAP at tIoU thresholds and Recall@k×tIoU, vectorized.

The numbers are identical to ``ANETdetection`` of ActionFormer (``libs/utils/metrics.py`` of
happyharrycn/actionformer_release, read at commit fa6e060, the version with
``compute_topkx_recall_detection`` and ``remove_duplicate_annotations``: also
``compute_average_precision_detection``, ``segment_iou``, ``interpolated_prec_rec``), which
ActionFormer's ``eval.py`` builds with the dataset's tIoU thresholds (THUMOS14: 0.3:0.1:0.7).
Conventions reproduced:

- **tIoU** of a prediction ``p`` and a ground truth ``g``: ``inter = max(0, min(pe, ge) - max(ps, gs))``,
  ``union = (ge - gs) + (pe - ps) - inter``, ``inter / union`` (``0/0`` gives NaN, see below).
- **Classes** are the sorted distinct ground-truth label ids; mAP is the mean AP over them. Classes
  with ground truth but no prediction have AP 0 and recall 0 and count in the mean.
- **Label matching** is by integer label id (ActionFormer's default ``label='label_id'``). The
  evaluator renumbers ground-truth ids to ``0..C-1`` in sorted order and maps prediction labels with
  the same table (``pandas.Series.replace``): a prediction label that is not a ground-truth id keeps
  its raw value, so with ``label_mode="actionformer"`` (default) it is scored as the class whose
  *renumbered* index equals that raw value, and ignored when no class has that index. This only
  matters when ground-truth ids are not ``0..C-1`` (a class absent from the split);
  ``label_mode="exact"`` ignores every prediction whose label has no ground truth instead.
- **Ground-truth clean-up** (``dedup_gt=True``, done by ActionFormer when it reads the annotation
  file): per video, in input order, an instance is dropped if it is shorter than ``1e-3`` s or if
  an earlier *kept* instance of the same label has start and end within ``1e-3`` s of it.
- **Orders and ties**: the evaluator reverses NumPy's default ascending argsort
  (``argsort()[::-1]``) of the class's scores (AP), of one video's scores of the class (Recall@kx)
  and of a prediction's tIoUs with the instances (matching). That sort is not stable: with
  NumPy >= 1.25 on AVX-512 / AVX2 CPUs (x86-simd-sort) tied values come out in an order that depends
  on the platform, so the original's results with tied scores or tied tIoUs are platform dependent.
  ``tie_order="numpy"`` (default) calls NumPy's default argsort on exactly the arrays the evaluator
  sorts (identical numbers on the same machine and NumPy); ``tie_order="stable"`` uses a stable sort,
  i.e. ties in *reverse input order* (later first), deterministic everywhere. NaN scores and NaN tIoUs
  come first. Input order is the order of the ``pred_*`` / ``gt_*`` arrays (for
  :class:`DetectionMetric`: update order, videos in the order given).
- **Matching** (AP), per class and threshold, predictions in that order: a prediction of a video
  without ground truth of its class is a false positive. Otherwise it looks at the ground truth of
  its video and class by descending tIoU, stops with a false positive at the first tIoU below the
  threshold, skips instances already matched at this threshold and takes the first free one (true
  positive). If all candidates are taken it is a false positive. A NaN tIoU (``0/0``: two
  zero-length segments) never stops the scan (it is matched like a perfect overlap). Predictions of
  videos that are not in the ground truth at all are false positives too.
- **AP**: ``precision = cumsum(tp) / (cumsum(tp) + cumsum(fp))``, ``recall = cumsum(tp) / n_gt``;
  all-point interpolated (VOC 2011): pad precision with 0 at both ends and recall with 0 and 1,
  make precision non-increasing from the right, sum ``Δrecall · precision`` where recall changes.
- **Recall@kx** (Ego4D-MQ), per class: for every video with ground truth of the class, take the
  ``k · n`` highest-scored predictions of that video and class (``n`` = its instance count) and
  count instances with tIoU ``>=`` threshold to any of them (no one-to-one matching;
  NaN tIoU does not count). Recall = covered / all instances of the class; mean over classes.
- **Thresholds** are compared as given: ActionFormer builds them with ``np.linspace`` (THUMOS14
  ``0.3, 0.39999999999999997, 0.5, 0.6, 0.7``, the default here; Ego4D / EPIC
  ``np.linspace(0.1, 0.5, 5)``, whose third value is ``0.30000000000000004``). Typing ``0.4`` instead
  only differs for a tIoU in between, but bit-identical results need the same floats.
- Outputs are in percent (the evaluator prints fractions × 100): ``mAP[t]`` = mean over classes,
  ``average_mAP`` = mean over thresholds. Without any ground truth every value is NaN.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tal.core.metrics._matching import match, small_int, stable_argsort, tiou
from tal.core.metrics.base import MergeableMetric, to_numpy
from tal.core.types import Segments

LabelMode = Literal["actionformer", "exact"]
TieOrder = Literal["numpy", "stable"]
# ActionFormer's THUMOS14 thresholds, np.linspace(0.3, 0.7, 5): note 0.39999999999999997, not 0.4.
DEFAULT_TIOU_THRESHOLDS: tuple[float, ...] = tuple(np.linspace(0.3, 0.7, 5).tolist())
DEFAULT_TOP_K: tuple[int, ...] = (1, 5)
DUPLICATE_TOL = 1e-3


def threshold_key(t: float) -> str:
    """``0.30000000000000004 -> "0.3"`` (keys of :meth:`LocalizationResult.as_dict`)."""
    return f"{round(float(t), 6):g}"


@dataclass
class LocalizationResult:
    """Scores of one evaluation, all in percent.

    Attributes:
        tiou_thresholds: ``T`` thresholds.
        top_k: ``K`` multipliers of Recall@kx.
        mAP: ``T`` values, mean AP over classes per threshold.
        average_mAP: mean of ``mAP``.
        recall: ``{"1x": [T values], ...}`` mean Recall@kx over classes per threshold.
        ap: ``(T, C)`` AP per threshold and class.
        per_class_recall: ``(T, K, C)`` Recall@kx per class.
        classes: ``(C,)`` ground-truth label ids, the column order of ``ap``.
    """

    tiou_thresholds: list[float]
    top_k: list[int]
    mAP: list[float]
    average_mAP: float
    recall: dict[str, list[float]]
    ap: np.ndarray
    per_class_recall: np.ndarray
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def as_dict(self) -> dict[str, Any]:
        """``{"average_mAP", "mAP@0.3", ..., "recall@1x@0.3", ...}`` plus the structured fields."""
        out: dict[str, Any] = {"average_mAP": self.average_mAP}
        for t, v in zip(self.tiou_thresholds, self.mAP, strict=True):
            out[f"mAP@{threshold_key(t)}"] = v
        for k in self.top_k:
            for t, v in zip(self.tiou_thresholds, self.recall[f"{k}x"], strict=True):
                out[f"recall@{k}x@{threshold_key(t)}"] = v
        out.update(
            tiou_thresholds=list(self.tiou_thresholds),
            mAP=list(self.mAP),
            recall={k: list(v) for k, v in self.recall.items()},
            per_class_AP=self.ap,
            per_class_recall=self.per_class_recall,
            classes=self.classes,
        )
        return out


def make_result(
    ap: np.ndarray, recall: np.ndarray, classes: np.ndarray, thresholds: np.ndarray, top_k: np.ndarray
) -> LocalizationResult:
    """Build a :class:`LocalizationResult` from fractions ``ap (T, C)`` and ``recall (T, K, C)``."""
    n_t, n_k = len(thresholds), len(top_k)
    if ap.shape[1] == 0:
        m_ap = np.full(n_t, np.nan)
        m_rec = np.full((n_t, n_k), np.nan)
        avg = float("nan")
    else:
        m_ap = ap.mean(axis=1)
        m_rec = recall.mean(axis=2)
        avg = float(m_ap.mean())
    return LocalizationResult(
        tiou_thresholds=[float(t) for t in thresholds],
        top_k=[int(k) for k in top_k],
        mAP=[float(v) * 100 for v in m_ap],
        average_mAP=avg * 100,
        recall={f"{int(k)}x": [float(v) * 100 for v in m_rec[:, i]] for i, k in enumerate(top_k)},
        ap=ap * 100,
        per_class_recall=recall * 100,
        classes=np.asarray(classes, np.int64),
    )


# ---------------------------------------------------------------------------------------------
# Small building blocks
# ---------------------------------------------------------------------------------------------
def segment_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """tIoU of every prediction ``(N, 2)`` with every ground truth ``(M, 2)`` → ``(N, M)`` (evaluator's formula)."""
    pred = np.asarray(pred, np.float64).reshape(-1, 2)
    gt = np.asarray(gt, np.float64).reshape(-1, 2)
    return tiou(pred[:, :1], pred[:, 1:], gt[None, :, 0], gt[None, :, 1])


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """All-point interpolated AP (VOC 2011) of a precision/recall curve ``(n,)``."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def duplicate_free_mask(
    video: np.ndarray, segments: np.ndarray, labels: np.ndarray, tol: float = DUPLICATE_TOL
) -> np.ndarray:
    """``(M,)`` bool: ground truth kept by ActionFormer's ``remove_duplicate_annotations``.

    Per video in input order: dropped if shorter than ``tol``, or if an earlier *kept* instance of
    the same label has start and end within ``tol``.
    """
    s, e = segments[:, 0], segments[:, 1]
    keep = (e - s) >= tol
    m = len(labels)
    if m < 2:
        return keep
    order = np.lexsort((s, labels, video))
    vo, lo, so, eo = video[order], labels[order], s[order], e[order]
    earlier: list[np.ndarray] = []
    later: list[np.ndarray] = []
    for d in range(1, m):  # starts are sorted inside a (video, label) run: stop at the first empty offset
        near = (vo[d:] == vo[:-d]) & (lo[d:] == lo[:-d]) & (so[d:] - so[:-d] <= tol)
        if not near.any():
            break
        close = near & (np.abs(eo[d:] - eo[:-d]) <= tol)
        a, b = order[:-d][close], order[d:][close]
        earlier.append(np.minimum(a, b))
        later.append(np.maximum(a, b))
    if not earlier:
        return keep
    first, second = np.concatenate(earlier), np.concatenate(later)
    for i in np.argsort(second, kind="stable"):  # few pairs; later instances after their partners
        if keep[second[i]] and keep[first[i]]:
            keep[second[i]] = False
    return keep


def _encode(*id_arrays: Sequence[Hashable] | np.ndarray) -> tuple[list[np.ndarray], int]:
    """Dense integer codes for video ids shared across the arrays (ids usually come in runs)."""
    index: dict[Hashable, int] = {}
    out = []
    for ids in id_arrays:
        arr = np.fromiter(ids, object, len(ids))
        if len(arr) == 0:
            out.append(np.zeros(0, np.int64))
            continue
        head = np.flatnonzero(np.concatenate([[True], arr[1:] != arr[:-1]]))
        codes = np.fromiter((index.setdefault(v, len(index)) for v in arr[head]), np.int64, len(head))
        out.append(np.repeat(codes, np.diff(np.append(head, len(arr)))))
    return out, len(index)


def map_pred_labels(pred_labels: np.ndarray, classes: np.ndarray, label_mode: LabelMode) -> np.ndarray:
    """Class index ``0..C-1`` of every prediction label, ``-1`` when not scored (see module doc)."""
    n_cls = len(classes)
    if n_cls == 0:
        return np.full(len(pred_labels), -1, np.int64)
    pos = np.searchsorted(classes, pred_labels)
    found = (pos < n_cls) & (classes[np.minimum(pos, n_cls - 1)] == pred_labels)
    if label_mode == "exact":
        return np.where(found, pos, -1)
    if label_mode != "actionformer":
        raise ValueError(f"label_mode must be 'actionformer' or 'exact', got {label_mode!r}")
    mapped = np.where(found, pos, pred_labels)
    return np.where((mapped >= 0) & (mapped < n_cls), mapped, -1)


def check_thresholds(tiou_thresholds: Sequence[float], top_k: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    thr = np.asarray(tiou_thresholds, np.float64).reshape(-1)
    ks = np.asarray(top_k, np.int64).reshape(-1)
    if thr.size == 0 or not np.all(np.isfinite(thr)):
        raise ValueError(f"tiou_thresholds must be a non-empty list of finite numbers, got {list(tiou_thresholds)}")
    if np.any(ks < 1):
        raise ValueError(f"top_k values must be >= 1, got {list(top_k)}")
    return thr, ks


# ---------------------------------------------------------------------------------------------
# The vectorized evaluator
# ---------------------------------------------------------------------------------------------
def compute_detection_metrics(
    gt_video_ids: Sequence[Hashable] | np.ndarray,
    gt_segments: Any,
    gt_labels: Any,
    pred_video_ids: Sequence[Hashable] | np.ndarray,
    pred_segments: Any,
    pred_labels: Any,
    pred_scores: Any,
    tiou_thresholds: Sequence[float] = DEFAULT_TIOU_THRESHOLDS,
    top_k: Sequence[int] = DEFAULT_TOP_K,
    *,
    label_mode: LabelMode = "actionformer",
    dedup_gt: bool = True,
    tie_order: TieOrder = "numpy",
) -> LocalizationResult:
    """mAP per tIoU threshold, average mAP and Recall@kx on flat arrays (conventions: module doc).

    Args:
        gt_video_ids: ``(M,)`` video id of each ground-truth instance.
        gt_segments: ``(M, 2)`` ``[start, end]`` in seconds.
        gt_labels: ``(M,)`` integer label ids.
        pred_video_ids: ``(N,)`` video id of each prediction.
        pred_segments: ``(N, 2)`` in seconds.
        pred_labels: ``(N,)`` integer label ids.
        pred_scores: ``(N,)`` confidences.
        tiou_thresholds: ``T`` thresholds; top_k: ``K`` multipliers for Recall@kx.
        label_mode: ``"actionformer"`` (evaluator's label renumbering) or ``"exact"``.
        dedup_gt: drop duplicate / shorter-than-1ms ground truth as ActionFormer's reader does.
        tie_order: ``"numpy"`` (the evaluator's own sorts, platform dependent for ties) or ``"stable"``.
    """
    thr, ks = check_thresholds(tiou_thresholds, top_k)
    (gv, pv), n_vid = _encode(gt_video_ids, pred_video_ids)
    gseg = to_numpy(gt_segments, np.float64).reshape(-1, 2)
    glab = to_numpy(gt_labels, np.int64).reshape(-1)
    pseg = to_numpy(pred_segments, np.float64).reshape(-1, 2)
    plab = to_numpy(pred_labels, np.int64).reshape(-1)
    pscore = to_numpy(pred_scores, np.float64).reshape(-1)
    if not (len(gv) == len(gseg) == len(glab)):
        raise ValueError(f"ground truth: {len(gv)} video ids, {len(gseg)} segments, {len(glab)} labels")
    if not (len(pv) == len(pseg) == len(plab) == len(pscore)):
        raise ValueError(f"predictions: {len(pv)} ids, {len(pseg)} segments, {len(plab)} labels, {len(pscore)} scores")
    if dedup_gt:
        keep = duplicate_free_mask(gv, gseg, glab)
        gv, gseg, glab = gv[keep], gseg[keep], glab[keep]

    classes = np.unique(glab)
    n_cls, n_t, n_k = len(classes), len(thr), len(ks)
    gcls = np.searchsorted(classes, glab)
    pcls = map_pred_labels(plab, classes, label_mode)
    n_gt = np.bincount(gcls, minlength=n_cls)

    # Predictions scored, in evaluation order: by class, then argsort()[::-1] of the class's scores.
    valid = np.flatnonzero(pcls >= 0)
    if tie_order == "stable":  # one stable sort by score (reversed: ties later-first), then by class
        by_score = valid[stable_argsort(pscore[valid])[::-1]]
        order = by_score[np.argsort(small_int(pcls[by_score], n_cls), kind="stable")]
    elif tie_order == "numpy":  # NumPy's default argsort of each class's scores in input order
        by_cls = valid[np.argsort(small_int(pcls[valid], n_cls), kind="stable")]
        cuts = np.cumsum(np.bincount(pcls[valid], minlength=n_cls))[:-1]
        order = np.concatenate([idx[np.argsort(pscore[idx])[::-1]] for idx in np.split(by_cls, cuts)] or [valid])
    else:
        raise ValueError(f"tie_order must be 'numpy' or 'stable', got {tie_order!r}")
    ocls = pcls[order]
    by_thr = np.argsort(thr, kind="stable")  # matching works on ascending thresholds
    tp, covered = match(order, ocls, pv[order], pseg, gcls, gv, gseg, n_vid, n_cls, thr[by_thr], ks, pscore, tie_order)
    back = np.argsort(by_thr)
    tp, covered = tp[:, back], covered[:, back]

    ap = np.zeros((n_t, n_cls))
    bounds = np.concatenate([[0], np.cumsum(np.bincount(ocls, minlength=n_cls))])
    for c in np.flatnonzero(bounds[1:] > bounds[:-1]):  # classes without predictions keep AP 0
        lo, hi = bounds[c], bounds[c + 1]
        tpc = np.cumsum(tp[lo:hi], axis=0, dtype=np.float64)
        fpc = np.arange(1, hi - lo + 1, dtype=np.float64)[:, None] - tpc
        ap[:, c] = _interpolated_ap_columns(tpc / (tpc + fpc), tpc / n_gt[c])
    recall = np.zeros((n_t, n_k, n_cls))
    if n_cls:
        recall = np.ascontiguousarray((covered / n_gt[:, None, None]).transpose(1, 2, 0))
    return make_result(ap, recall, classes, thr, ks)


def _interpolated_ap_columns(prec: np.ndarray, rec: np.ndarray) -> np.ndarray:
    """:func:`interpolated_ap` of every column of ``(n, T)`` curves (same arithmetic, per column sums)."""
    n, n_t = prec.shape
    mprec = np.zeros((n + 2, n_t))
    mprec[1:-1] = prec
    mprec = np.maximum.accumulate(mprec[::-1], axis=0)[::-1]
    mrec = np.empty((n + 2, n_t))
    mrec[0], mrec[1:-1], mrec[-1] = 0.0, rec, 1.0
    changed = mrec[1:] != mrec[:-1]
    terms = (mrec[1:] - mrec[:-1]) * mprec[1:]
    return np.array([np.sum(terms[changed[:, t], t]) for t in range(n_t)])


# ---------------------------------------------------------------------------------------------
# Mapping API and Metric object
# ---------------------------------------------------------------------------------------------
def _flatten(items: Mapping[str, Segments], with_scores: bool) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    ids: list[str] = []
    segs, labels, scores = [], [], []
    for vid, s in items.items():
        n = len(s)
        ids.extend([vid] * n)
        segs.append(to_numpy(s.segments, np.float64).reshape(-1, 2))
        labels.append(to_numpy(s.labels, np.int64).reshape(-1))
        if with_scores:
            if s.scores is None and n:
                raise ValueError(f"predictions of video {vid!r} have no scores")
            scores.append(np.zeros(0) if s.scores is None else to_numpy(s.scores, np.float64).reshape(-1))
    cat_segs = np.concatenate(segs) if segs else np.zeros((0, 2))
    cat_labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    cat_scores = np.concatenate(scores) if scores else np.zeros(0)
    return ids, cat_segs, cat_labels, cat_scores


def evaluate_detection(
    gt: Mapping[str, Segments],
    pred: Mapping[str, Segments],
    tiou_thresholds: Sequence[float] = DEFAULT_TIOU_THRESHOLDS,
    top_k: Sequence[int] = DEFAULT_TOP_K,
    *,
    label_mode: LabelMode = "actionformer",
    dedup_gt: bool = True,
    tie_order: TieOrder = "numpy",
) -> LocalizationResult:
    """Score predictions ``{video_id: Segments with scores}`` against ``{video_id: Segments}``.

    The mappings are what an ActivityNet-style ground-truth file and results file parse to (labels
    as integer ids). Predictions are taken in mapping order, then segment order (this fixes the order
    of tied scores). A video of ``pred`` that is not in ``gt`` only adds false positives.
    """
    gids, gseg, glab, _ = _flatten(gt, with_scores=False)
    pids, pseg, plab, psc = _flatten(pred, with_scores=True)
    return compute_detection_metrics(
        gids,
        gseg,
        glab,
        pids,
        pseg,
        plab,
        psc,
        tiou_thresholds,
        top_k,
        label_mode=label_mode,
        dedup_gt=dedup_gt,
        tie_order=tie_order,
    )


class DetectionMetric(MergeableMetric):
    """:class:`~tal.core.protocols.Metric` for localization: ``update(predictions, targets, video_ids)``
    with one :class:`~tal.core.types.Segments` per video (seconds; predictions with scores).

    ``compute()`` returns :meth:`LocalizationResult.as_dict` (percent). Videos are evaluated in update
    order (after ``sync``: rank order); a repeated video id keeps its first record.
    """

    state_names = ("pred_segments", "pred_labels", "pred_scores", "gt_segments", "gt_labels")

    def __init__(
        self,
        tiou_thresholds: Sequence[float] = DEFAULT_TIOU_THRESHOLDS,
        top_k: Sequence[int] = DEFAULT_TOP_K,
        label_mode: LabelMode = "actionformer",
        dedup_gt: bool = True,
        tie_order: TieOrder = "numpy",
        deduplicate: bool = True,
    ) -> None:
        thr, ks = check_thresholds(tiou_thresholds, top_k)
        if label_mode not in ("actionformer", "exact"):
            raise ValueError(f"label_mode must be 'actionformer' or 'exact', got {label_mode!r}")
        if tie_order not in ("numpy", "stable"):
            raise ValueError(f"tie_order must be 'numpy' or 'stable', got {tie_order!r}")
        self.tie_order: TieOrder = tie_order
        self.tiou_thresholds = [float(t) for t in thr]
        self.top_k = [int(k) for k in ks]
        self.label_mode: LabelMode = label_mode
        self.dedup_gt = dedup_gt
        super().__init__(deduplicate=deduplicate)

    def settings(self) -> dict[str, Any]:
        return {
            "tiou_thresholds": self.tiou_thresholds,
            "top_k": self.top_k,
            "label_mode": self.label_mode,
            "dedup_gt": self.dedup_gt,
            "tie_order": self.tie_order,
        }

    def update(self, predictions: Sequence[Segments], targets: Sequence[Segments], video_ids: Sequence[str]) -> None:
        """Add one batch: ``predictions[i]`` and ``targets[i]`` are the segments of ``video_ids[i]``."""
        if not (len(predictions) == len(targets) == len(video_ids)):
            raise ValueError(f"{len(predictions)} predictions, {len(targets)} targets, {len(video_ids)} video ids")
        cols: dict[str, list[np.ndarray]] = {name: [] for name in self.state_names}
        for vid, p, g in zip(video_ids, predictions, targets, strict=True):
            if p.scores is None and len(p):
                raise ValueError(f"predictions of video {vid!r} have no scores")
            cols["pred_segments"].append(to_numpy(p.segments, np.float64).reshape(-1, 2))
            cols["pred_labels"].append(to_numpy(p.labels, np.int64).reshape(-1))
            cols["pred_scores"].append(np.zeros(0) if p.scores is None else to_numpy(p.scores, np.float64).reshape(-1))
            cols["gt_segments"].append(to_numpy(g.segments, np.float64).reshape(-1, 2))
            cols["gt_labels"].append(to_numpy(g.labels, np.int64).reshape(-1))
        self._append(video_ids, **cols)

    def result(self) -> LocalizationResult:
        """The evaluation of every record held."""
        rec = self.records()
        vids = rec["video_ids"]

        def cat(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
            return np.concatenate(rec[name]) if vids else np.zeros(shape, dtype)

        p_ids = np.repeat(np.arange(len(vids)), [len(x) for x in rec["pred_labels"]])
        g_ids = np.repeat(np.arange(len(vids)), [len(x) for x in rec["gt_labels"]])
        return compute_detection_metrics(
            g_ids,
            cat("gt_segments", (0, 2), np.float64),
            cat("gt_labels", (0,), np.int64),
            p_ids,
            cat("pred_segments", (0, 2), np.float64),
            cat("pred_labels", (0,), np.int64),
            cat("pred_scores", (0,), np.float64),
            self.tiou_thresholds,
            self.top_k,
            label_mode=self.label_mode,
            dedup_gt=self.dedup_gt,
            tie_order=self.tie_order,
        )

    def compute(self) -> dict[str, Any]:
        """``{"average_mAP", "mAP@t", "recall@kx@t", ...}`` in percent plus structured fields."""
        return self.result().as_dict()
