"""Test oracle: the ActivityNet/ActionFormer detection evaluator as a plain per-class Python loop.

Same semantics as :mod:`tal.core.metrics.localization` (see its docstring for the conventions),
written the way the original evaluator is: one class at a time, one prediction at a time, one
ground-truth instance at a time, sorting with ``argsort()[::-1]`` as it does (``tie_order="numpy"``:
NumPy's default sort; ``"stable"``: a stable one). Slow; used by the tests and the benchmark only.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from tal.core.metrics.localization import (
    DEFAULT_TIOU_THRESHOLDS,
    DEFAULT_TOP_K,
    DUPLICATE_TOL,
    LabelMode,
    LocalizationResult,
)


def _iou_one(pred: tuple[float, float], gts: np.ndarray) -> np.ndarray:
    """tIoU of one prediction with each row of ``gts`` ``(G, 2)``."""
    left = np.maximum(pred[0], gts[:, 0])
    right = np.minimum(pred[1], gts[:, 1])
    inter = (right - left).clip(0)
    union = (gts[:, 1] - gts[:, 0]) + (pred[1] - pred[0]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter.astype(float) / union


def _descending(values: np.ndarray, tie_order: str) -> np.ndarray:
    """``argsort()[::-1]``: NumPy's default sort (``"numpy"``) or a stable one (ties reversed)."""
    return np.argsort(values, kind="stable" if tie_order == "stable" else None)[::-1]


def _voc_ap(prec: np.ndarray, rec: np.ndarray) -> float:
    mprec = [0.0, *prec.tolist(), 0.0]
    mrec = [0.0, *rec.tolist(), 1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    mp, mr = np.array(mprec), np.array(mrec)
    idx = np.where(mr[1:] != mr[:-1])[0] + 1
    return float(np.sum((mr[idx] - mr[idx - 1]) * mp[idx]))


def _dedup(vids: list[Any], segs: np.ndarray, labels: np.ndarray) -> list[int]:
    """Indices kept by ActionFormer's remove_duplicate_annotations (per video, input order)."""
    kept: list[int] = []
    kept_by_video: dict[Any, list[int]] = {}
    for i in range(len(vids)):
        s, e, lab = segs[i, 0], segs[i, 1], labels[i]
        ok = (e - s) >= DUPLICATE_TOL
        for j in kept_by_video.get(vids[i], []):
            if abs(s - segs[j, 0]) <= DUPLICATE_TOL and abs(e - segs[j, 1]) <= DUPLICATE_TOL and lab == labels[j]:
                ok = False
                break
        if ok:
            kept.append(i)
            kept_by_video.setdefault(vids[i], []).append(i)
    return kept


def _ap_one_class(
    gt_vids: list[Any],
    gt_segs: np.ndarray,
    p_vids: list[Any],
    p_segs: np.ndarray,
    p_scores: np.ndarray,
    thr: np.ndarray,
    tie_order: str,
) -> np.ndarray:
    ap = np.zeros(len(thr))
    if len(p_vids) == 0:
        return ap
    npos = float(len(gt_vids))
    lock = -np.ones((len(thr), len(gt_vids)))
    gt_of_video: dict[Any, list[int]] = {}
    for i, v in enumerate(gt_vids):
        gt_of_video.setdefault(v, []).append(i)
    order = _descending(p_scores, tie_order)
    tp = np.zeros((len(thr), len(order)))
    fp = np.zeros((len(thr), len(order)))
    for idx, k in enumerate(order):
        rows = gt_of_video.get(p_vids[k])
        if rows is None:
            fp[:, idx] = 1
            continue
        tiou = _iou_one((p_segs[k, 0], p_segs[k, 1]), gt_segs[rows])
        by_tiou = _descending(tiou, tie_order)
        for t, th in enumerate(thr):
            for jdx in by_tiou:
                if tiou[jdx] < th:
                    fp[t, idx] = 1
                    break
                if lock[t, rows[jdx]] >= 0:
                    continue
                tp[t, idx] = 1
                lock[t, rows[jdx]] = idx
                break
            if fp[t, idx] == 0 and tp[t, idx] == 0:
                fp[t, idx] = 1
    tp_c = np.cumsum(tp, axis=1)
    fp_c = np.cumsum(fp, axis=1)
    rec = tp_c / npos
    prec = tp_c / (tp_c + fp_c)
    for t in range(len(thr)):
        ap[t] = _voc_ap(prec[t], rec[t])
    return ap


def _recall_one_class(
    gt_vids: list[Any],
    gt_segs: np.ndarray,
    p_vids: list[Any],
    p_segs: np.ndarray,
    p_scores: np.ndarray,
    thr: np.ndarray,
    top_k: np.ndarray,
    tie_order: str,
) -> np.ndarray:
    if len(p_vids) == 0:
        return np.zeros((len(thr), len(top_k)))
    tp = np.zeros((len(thr), len(top_k)))
    n_gts = 0
    videos: list[Any] = []
    for v in gt_vids:
        if v not in videos:
            videos.append(v)
    for v in videos:
        g_rows = [i for i, x in enumerate(gt_vids) if x == v]
        n_gts += len(g_rows)
        p_rows = [i for i, x in enumerate(p_vids) if x == v]
        if not p_rows:
            continue
        best = _descending(p_scores[p_rows], tie_order)[: int(max(top_k)) * len(g_rows)]
        tiou = np.stack([_iou_one((p_segs[p_rows[b], 0], p_segs[p_rows[b], 1]), gt_segs[g_rows]) for b in best])
        for t, th in enumerate(thr):
            for ki, k in enumerate(top_k):
                top = tiou[: int(k) * len(g_rows)]
                tp[t, ki] += ((top >= th).sum(axis=0) > 0).sum()
    return tp / n_gts


def detection_metrics_loop(
    gt_video_ids: Sequence[Hashable],
    gt_segments: Any,
    gt_labels: Any,
    pred_video_ids: Sequence[Hashable],
    pred_segments: Any,
    pred_labels: Any,
    pred_scores: Any,
    tiou_thresholds: Sequence[float] = DEFAULT_TIOU_THRESHOLDS,
    top_k: Sequence[int] = DEFAULT_TOP_K,
    *,
    label_mode: LabelMode = "actionformer",
    dedup_gt: bool = True,
    tie_order: str = "numpy",
) -> LocalizationResult:
    """Same signature and result as :func:`~tal.core.metrics.localization.compute_detection_metrics`."""
    thr = np.asarray(tiou_thresholds, np.float64)
    ks = np.asarray(top_k, np.int64)
    gv = list(gt_video_ids)
    gseg = np.asarray(gt_segments, np.float64).reshape(-1, 2)
    glab = np.asarray(gt_labels, np.int64).reshape(-1)
    pv = list(pred_video_ids)
    pseg = np.asarray(pred_segments, np.float64).reshape(-1, 2)
    plab = np.asarray(pred_labels, np.int64).reshape(-1)
    psc = np.asarray(pred_scores, np.float64).reshape(-1)
    if dedup_gt:
        kept = _dedup(gv, gseg, glab)
        gv, gseg, glab = [gv[i] for i in kept], gseg[kept], glab[kept]

    classes = sorted(set(glab.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    g_cls = [index[c] for c in glab.tolist()]
    if label_mode == "actionformer":
        p_cls = [index.get(c, c) for c in plab.tolist()]  # unknown labels keep their raw value
    else:
        p_cls = [index.get(c, -1) for c in plab.tolist()]

    ap = np.zeros((len(thr), len(classes)))
    recall = np.zeros((len(thr), len(ks), len(classes)))
    for ci in range(len(classes)):
        g_rows = [i for i, c in enumerate(g_cls) if c == ci]
        p_rows = [i for i, c in enumerate(p_cls) if c == ci]
        g_vids = [gv[i] for i in g_rows]
        p_vids = [pv[i] for i in p_rows]
        ap[:, ci] = _ap_one_class(g_vids, gseg[g_rows], p_vids, pseg[p_rows], psc[p_rows], thr, tie_order)
        recall[:, :, ci] = _recall_one_class(
            g_vids, gseg[g_rows], p_vids, pseg[p_rows], psc[p_rows], thr, ks, tie_order
        )

    if classes:
        m_ap = ap.mean(axis=1)
        m_rec = recall.mean(axis=2)
        avg = float(m_ap.mean())
    else:
        m_ap = np.full(len(thr), np.nan)
        m_rec = np.full((len(thr), len(ks)), np.nan)
        avg = float("nan")
    return LocalizationResult(
        tiou_thresholds=thr.tolist(),
        top_k=ks.tolist(),
        mAP=(m_ap * 100).tolist(),
        average_mAP=avg * 100,
        recall={f"{k}x": (m_rec[:, i] * 100).tolist() for i, k in enumerate(ks.tolist())},
        ap=ap * 100,
        per_class_recall=recall * 100,
        classes=np.asarray(classes, np.int64),
    )
