"""Test oracle: the MS-TCN / DiffAct segmentation evaluator as a straightforward per-frame loop.

Plain Python over frames and segments, structured like MS-TCN's ``eval.py`` (segments are
re-extracted for every score, as there). The crash / NaN cases get the behaviour defined in
:mod:`tal.core.metrics.segmentation` (marked "defined:" below). Slow; for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tal.core.metrics.segmentation import DEFAULT_OVERLAPS, SegmentationResult


def labels_start_end(frames: Sequence[int], bg: Sequence[int], diffact: bool = False) -> tuple[list, list, list]:
    """Non-background runs of ``frames`` → ``(labels, starts, ends)`` (one pass over the frames)."""
    labels: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    last = frames[0]
    if last not in bg:
        labels.append(last)
        starts.append(0)
    i = 0
    for i in range(len(frames)):
        if frames[i] != last:
            if frames[i] not in bg:
                labels.append(frames[i])
                starts.append(i)
            if last not in bg:
                ends.append(i)
            last = frames[i]
    if last not in bg:
        ends.append(i if diffact else i + 1)
    return labels, starts, ends


def edit_distance(p: Sequence[int], y: Sequence[int]) -> float:
    """Levenshtein distance by the full ``(m+1, n+1)`` table."""
    d = np.zeros((len(p) + 1, len(y) + 1))
    for i in range(len(p) + 1):
        d[i, 0] = i
    for j in range(len(y) + 1):
        d[0, j] = j
    for j in range(1, len(y) + 1):
        for i in range(1, len(p) + 1):
            if y[j - 1] == p[i - 1]:
                d[i, j] = d[i - 1, j - 1]
            else:
                d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + 1)
    return float(d[-1, -1])


def edit_score(pred: Sequence[int], gt: Sequence[int], bg: Sequence[int], diffact: bool = False) -> float:
    p, _, _ = labels_start_end(pred, bg, diffact)
    y, _, _ = labels_start_end(gt, bg, diffact)
    if not p and not y:
        return 100.0  # defined: the evaluators compute 0/0 = NaN
    return (1 - edit_distance(p, y) / max(len(p), len(y))) * 100


def f_counts(
    pred: Sequence[int], gt: Sequence[int], overlap: float, bg: Sequence[int], diffact: bool = False
) -> tuple[float, float, float]:
    p_lab, p_start, p_end = labels_start_end(pred, bg, diffact)
    y_lab, y_start, y_end = labels_start_end(gt, bg, diffact)
    if not y_lab:
        return 0.0, float(len(p_lab)), 0.0  # defined: the evaluators crash on argmax([])
    tp = 0
    fp = 0
    hits = np.zeros(len(y_lab))
    for j in range(len(p_lab)):
        inter = np.minimum(p_end[j], y_end) - np.maximum(p_start[j], y_start)
        hull = np.maximum(p_end[j], y_end) - np.minimum(p_start[j], y_start)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = (1.0 * inter / hull) * np.array([p_lab[j] == y for y in y_lab])
        idx = int(np.argmax(iou))
        if iou[idx] >= overlap and not hits[idx]:
            tp += 1
            hits[idx] = 1
        else:
            fp += 1
    return float(tp), float(fp), float(len(y_lab) - sum(hits))


def segmentation_loop(
    predictions: Sequence[Any],
    targets: Sequence[Any],
    background_ids: Sequence[int] = (),
    overlaps: Sequence[float] = DEFAULT_OVERLAPS,
    convention: str = "mstcn",
) -> SegmentationResult:
    """Same result as :func:`~tal.core.metrics.segmentation.evaluate_segmentation`."""
    diffact = convention == "diffact"
    bg = list(background_ids)
    tp, fp, fn = np.zeros(len(overlaps)), np.zeros(len(overlaps)), np.zeros(len(overlaps))
    correct = 0
    total = 0
    edit = 0.0
    for pred_arr, gt_arr in zip(predictions, targets, strict=True):
        pred = np.asarray(pred_arr).tolist()
        gt = np.asarray(gt_arr).tolist()
        if len(gt) == 0 or len(pred) != len(gt):
            raise ValueError("empty video or prediction/ground-truth length mismatch")
        for i in range(len(gt)):
            total += 1
            if gt[i] == pred[i]:
                correct += 1
        edit += edit_score(pred, gt, bg, diffact)
        for s, o in enumerate(overlaps):
            a, b, c = f_counts(pred, gt, o, bg, diffact)
            tp[s] += a
            fp[s] += b
            fn[s] += c
    f1 = []
    for s in range(len(overlaps)):
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = tp[s] / float(tp[s] + fp[s])
            recall = tp[s] / float(tp[s] + fn[s])
            f1.append(float(np.nan_to_num(2.0 * (precision * recall) / (precision + recall)) * 100))
    n = len(targets)
    return SegmentationResult(
        overlaps=[float(o) for o in overlaps],
        f1=f1,
        edit=(1.0 * edit) / n if n else float("nan"),
        acc=100 * float(correct) / total if total else float("nan"),
        tp=tp.astype(np.int64),
        fp=fp.astype(np.int64),
        fn=fn.astype(np.int64),
        num_videos=n,
        num_frames=total,
    )
