"""Temporal action segmentation: F1@{10,25,50}, Edit and frame accuracy, vectorized.

Identical to MS-TCN's ``eval.py`` (yabufarha/ms-tcn: ``get_labels_start_end_time``,
``levenstein``, ``edit_score``, ``f_score`` and its ``main``) and, with ``convention="diffact"``, to
DiffAct's ``utils.py`` (Finspire13/DiffAct: ``get_labels_start_end_time``, ``func_eval``). Inputs are
integer frame labels; mapping class names to ids (``mapping.txt``) is the caller's job.

Conventions reproduced:

- **Segments**: maximal runs of one label; runs of a background class are dropped. A segment is
  ``[start, end)`` in frames. ``convention="diffact"``: the *last* run of a video ends at ``T - 1``
  instead of ``T`` (DiffAct appends the loop index, MS-TCN the index + 1); every other end is equal.
- **Background**: both evaluators default to ``bg_class=["background"]`` and compare label *names*,
  so on datasets without a class called ``background`` (Breakfast: ``SIL``; 50Salads) nothing is
  excluded and published numbers count those segments. Here background is a set of class ids
  (``background_ids``, default none); :class:`SegmentationMetric` can resolve names.
- **Edit**: Levenshtein distance between the predicted and true segment-label sequences, normalised
  per video as ``(1 - D / max(m, n)) * 100`` (``edit_score(..., norm=True)``, the default both
  evaluators use); the score is the plain mean over videos.
- **F1@τ**: for each predicted segment in temporal order, ``IoU = intersection / hull`` with every
  true segment (``min(ends) - max(starts)`` over ``max(ends) - min(starts)``, so disjoint segments get
  a negative value) times ``[same label]``; ``argmax`` picks one true segment (first maximum, NaN
  wins): a true positive if ``IoU >= τ`` and that segment is not already hit, else a false positive
  (no fallback to the second best). ``fn = true segments - hits``. tp/fp/fn are summed over all
  videos, then ``P = tp/(tp+fp)``, ``R = tp/(tp+fn)``, ``F1 = 2PR/(P+R)``, ``nan_to_num`` → 0, × 100.
- **Acc**: correct frames / all frames × 100 over the whole set.

Where the evaluators crash or give NaN, this module defines (both reference implementations
behave the same way here):

- a video with ``T = 0`` frames (``IndexError`` in the evaluators): ``ValueError``;
- ground truth without any non-background segment while the prediction has some (``argmax`` of an
  empty sequence raises): every predicted segment is a false positive;
- neither has a non-background segment (Edit ``0/0 = NaN`` poisons the mean): Edit of that video
  is 100 (two equal, empty sequences);
- DiffAct only: a one-frame last segment becomes ``[T-1, T-1]`` (zero length). Predicted, it is
  always a false positive (its IoU is never positive; against another such segment ``0/0`` is NaN,
  which ``argmax`` picks and which fails ``>= τ``); true, it can never be hit (a false negative) —
  reproduced as is;
- no videos at all (``ZeroDivisionError`` for Acc and Edit): Acc and Edit are NaN, F1 is 0 (the
  evaluators' ``nan_to_num`` of 0/0);
- prediction and ground truth of different lengths (MS-TCN reads past the end or ignores the
  tail, DiffAct asserts): ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tal.core.metrics.base import MergeableMetric, to_numpy

Convention = Literal["mstcn", "diffact"]
DEFAULT_OVERLAPS: tuple[float, ...] = (0.1, 0.25, 0.5)


def overlap_key(o: float) -> str:
    """``0.25 -> "F1@25"``."""
    return f"F1@{round(float(o) * 100, 4):g}"


@dataclass
class SegmentationStats:
    """Per-video sufficient statistics ``(V, ...)``; :meth:`reduce` turns them into scores."""

    correct: np.ndarray  # (V,) int64 correct frames
    total: np.ndarray  # (V,) int64 frames
    edit: np.ndarray  # (V,) float64 normalised edit score, percent
    tp: np.ndarray  # (V, O) int64
    fp: np.ndarray  # (V, O) int64
    fn: np.ndarray  # (V, O) int64


@dataclass
class SegmentationResult:
    """Scores in percent: ``f1`` per overlap, ``edit``, ``acc`` and the summed counts ``(O,)``."""

    overlaps: list[float]
    f1: list[float]
    edit: float
    acc: float
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    num_videos: int
    num_frames: int

    def as_dict(self) -> dict[str, Any]:
        """``{"F1@10", "F1@25", "F1@50", "Edit", "Acc", ...}`` plus counts."""
        out: dict[str, Any] = {overlap_key(o): v for o, v in zip(self.overlaps, self.f1, strict=True)}
        out.update(
            Edit=self.edit,
            Acc=self.acc,
            num_videos=self.num_videos,
            num_frames=self.num_frames,
            tp=self.tp,
            fp=self.fp,
            fn=self.fn,
        )
        return out


def _check(convention: str, overlaps: Sequence[float]) -> np.ndarray:
    if convention not in ("mstcn", "diffact"):
        raise ValueError(f"convention must be 'mstcn' or 'diffact', got {convention!r}")
    ov = np.asarray(overlaps, np.float64).reshape(-1)
    if ov.size == 0 or np.any(~(ov > 0)) or np.any(ov > 1):
        raise ValueError(f"overlaps must be in (0, 1], got {list(overlaps)}")
    return ov


def extract_segments(
    labels: Any, background_ids: Sequence[int] = (), convention: Convention = "mstcn"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-background segments of one ``(T,)`` label sequence → ``(labels, starts, ends)``, each ``(S,)``."""
    lab = to_numpy(labels, np.int64).reshape(-1)
    if lab.size == 0:
        raise ValueError("a video with 0 frames has no segments")
    seg = _segments([lab], background_ids, convention)
    return seg.label, seg.start, seg.end


@dataclass
class _Segs:
    label: np.ndarray  # (S,)
    start: np.ndarray  # (S,) global frame index (videos concatenated)
    end: np.ndarray  # (S,)
    video: np.ndarray  # (S,)
    offsets: np.ndarray  # (V + 1,) first segment of each video


def _segments(videos: Sequence[np.ndarray], background_ids: Sequence[int], convention: str) -> _Segs:
    lengths = np.array([len(v) for v in videos], np.int64)
    flat = np.concatenate(videos) if videos else np.zeros(0, np.int64)
    return _segments_flat(flat, np.concatenate([[0], np.cumsum(lengths)]), background_ids, convention)


def _segments_flat(flat: np.ndarray, frame0: np.ndarray, background_ids: Sequence[int], convention: str) -> _Segs:
    """Segments of videos concatenated in ``flat``; video ``v`` is ``flat[frame0[v]:frame0[v + 1]]`` (non-empty)."""
    change = np.empty(len(flat), bool)
    change[0:1] = True
    np.not_equal(flat[1:], flat[:-1], out=change[1:])
    change[frame0[:-1]] = True
    start = np.flatnonzero(change)
    video = np.searchsorted(frame0, start, side="right") - 1
    end = np.append(start[1:], len(flat))
    last = end == frame0[video + 1]
    if convention == "diffact":
        end = end - last  # DiffAct: the last run of a video ends at T - 1
    label = flat[start]
    keep = ~np.isin(label, np.asarray(background_ids, np.int64))
    label, start, end, video = label[keep], start[keep], end[keep], video[keep]
    offsets = np.searchsorted(video, np.arange(len(frame0)))
    return _Segs(label, start, end, video, offsets)


def levenshtein(a: Sequence[int], b: Sequence[int]) -> int:
    """Edit distance of two label sequences (insert / delete / substitute, cost 1)."""
    x, y = np.asarray(a, np.int64), np.asarray(b, np.int64)
    return int(_levenshtein_batch(x, np.array([0, len(x)]), y, np.array([0, len(y)]))[0])


def _levenshtein_batch(p: np.ndarray, p_off: np.ndarray, y: np.ndarray, y_off: np.ndarray) -> np.ndarray:
    """Edit distances of many sequence pairs (``p[p_off[i]:p_off[i+1]]`` vs ``y[...]``) → ``(V,)``.

    Dynamic programming one row at a time for a chunk of videos at once; a row update is
    vectorized: ``D[i, j] = min_k<=j (min(D[i-1, k] + 1, D[i-1, k-1] + cost) + j - k)``, a running
    minimum. Videos are chunked by sequence length so padding stays small.
    """
    m, n = np.diff(p_off), np.diff(y_off)
    out = np.zeros(len(m), np.int64)
    order = np.lexsort((n, m))
    chunk = 256
    for c0 in range(0, len(order), chunk):
        idx = order[c0 : c0 + chunk]
        mm, nn = int(m[idx].max()), int(n[idx].max())
        if mm == 0:
            out[idx] = n[idx]
            continue
        pp = np.full((len(idx), mm), -1, np.int64)
        yy = np.full((len(idx), nn), -2, np.int64)
        pr = np.arange(mm)[None, :] < m[idx][:, None]
        yr = np.arange(nn)[None, :] < n[idx][:, None]
        pp[pr] = p[np.repeat(p_off[idx], m[idx]) + np.nonzero(pr)[1]]
        yy[yr] = y[np.repeat(y_off[idx], n[idx]) + np.nonzero(yr)[1]]
        ar = np.arange(nn + 1)
        row = np.broadcast_to(ar, (len(idx), nn + 1)).copy()
        done = m[idx] == 0
        out[idx[done]] = n[idx[done]]
        for i in range(1, mm + 1):
            sub = row[:, :-1] + (pp[:, i - 1 : i] != yy)
            tmp = np.empty_like(row)
            tmp[:, 0] = i
            np.minimum(sub, row[:, 1:] + 1, out=tmp[:, 1:])
            row = np.minimum.accumulate(tmp - ar, axis=1) + ar
            at = np.flatnonzero(m[idx] == i)
            out[idx[at]] = row[at, n[idx[at]]]
    return out


def segmentation_stats(
    predictions: Sequence[Any],
    targets: Sequence[Any],
    background_ids: Sequence[int] = (),
    overlaps: Sequence[float] = DEFAULT_OVERLAPS,
    convention: Convention = "mstcn",
) -> SegmentationStats:
    """Per-video counts for ``V`` pairs of ``(T_v,)`` integer label sequences (all videos at once)."""
    ov = _check(convention, overlaps)
    preds = [to_numpy(x, np.int64).reshape(-1) for x in predictions]
    gts = [to_numpy(x, np.int64).reshape(-1) for x in targets]
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} targets")
    for i, (a, b) in enumerate(zip(preds, gts, strict=True)):
        if len(a) != len(b):
            raise ValueError(f"video {i}: prediction has {len(a)} frames, ground truth {len(b)}")
        if len(b) == 0:
            raise ValueError(f"video {i} has 0 frames")
    n_vid = len(gts)
    if n_vid == 0:
        z = np.zeros((0, len(ov)), np.int64)
        return SegmentationStats(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), z, z.copy(), z.copy())
    total = np.array([len(g) for g in gts], np.int64)
    frame0 = np.concatenate([[0], np.cumsum(total)])
    flat_p, flat_y = np.concatenate(preds), np.concatenate(gts)
    correct = np.add.reduceat((flat_p == flat_y).astype(np.int64), frame0[:-1])

    ps = _segments_flat(flat_p, frame0, background_ids, convention)
    ys = _segments_flat(flat_y, frame0, background_ids, convention)
    dist = _levenshtein_batch(ps.label, ps.offsets, ys.label, ys.offsets)
    longest = np.maximum(np.diff(ps.offsets), np.diff(ys.offsets))
    with np.errstate(invalid="ignore", divide="ignore"):
        edit = np.where(longest > 0, (1 - dist / longest) * 100, 100.0)

    best_iou, best_gt = _best_match(ps, ys)
    n_pred = np.diff(ps.offsets)
    n_true = np.diff(ys.offsets)
    tp = np.zeros((n_vid, len(ov)), np.int64)
    for k, o in enumerate(ov):
        won = np.unique(best_gt[best_iou >= o])  # the first such prediction hits, later ones are FP
        tp[:, k] = np.bincount(ys.video[won], minlength=n_vid)
    return SegmentationStats(correct, total, edit, tp, n_pred[:, None] - tp, n_true[:, None] - tp)


def _best_match(ps: _Segs, ys: _Segs) -> tuple[np.ndarray, np.ndarray]:
    """For each predicted segment: the IoU and index of the true segment ``argmax`` picks, when that
    IoU is positive (else ``-inf``: a false positive at every overlap).

    Only true segments of the same label with a positive intersection have a positive IoU, and true
    segments are sorted and disjoint, so they lie in the range ``[lo, hi)`` of a binary search (global
    frame indices keep videos apart). A row with a NaN (0/0) belongs to a zero-length prediction,
    whose IoUs are never positive, so it is a false positive either way.
    """
    n_p = len(ps.label)
    best_iou = np.full(n_p, -np.inf)
    best_gt = np.zeros(n_p, np.int64)
    if n_p == 0 or len(ys.label) == 0:
        return best_iou, best_gt
    lo = np.searchsorted(ys.end, ps.start, side="right")
    hi = np.searchsorted(ys.start, ps.end, side="left")
    cnt = np.maximum(hi - lo, 0)
    pj = np.repeat(np.arange(n_p), cnt)
    g = lo[pj] + (np.arange(len(pj)) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    same = ys.label[g] == ps.label[pj]
    pj, g = pj[same], g[same]
    inter = np.minimum(ps.end[pj], ys.end[g]) - np.maximum(ps.start[pj], ys.start[g])
    hull = np.maximum(ps.end[pj], ys.end[g]) - np.minimum(ps.start[pj], ys.start[g])
    pos = inter > 0
    if not pos.any():
        return best_iou, best_gt
    pj, g = pj[pos], g[pos]
    iou = 1.0 * inter[pos] / hull[pos]
    # Per prediction: highest IoU, ties → lowest true index (argmax returns the first maximum).
    order = np.lexsort((g, -iou, pj))
    first = order[np.concatenate([[True], pj[order][1:] != pj[order][:-1]])]
    best_iou[pj[first]] = iou[first]
    best_gt[pj[first]] = g[first]
    return best_iou, best_gt


def reduce_stats(stats: SegmentationStats, overlaps: Sequence[float] = DEFAULT_OVERLAPS) -> SegmentationResult:
    """Scores of the whole set from per-video statistics (sums as in the evaluators)."""
    ov = np.asarray(overlaps, np.float64).reshape(-1)
    n_vid = len(stats.total)
    tp = stats.tp.sum(axis=0).astype(np.float64)
    fp = stats.fp.sum(axis=0).astype(np.float64)
    fn = stats.fn.sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        f1 = np.nan_to_num(2.0 * (precision * recall) / (precision + recall)) * 100
    frames = int(stats.total.sum())
    acc = 100 * float(stats.correct.sum()) / frames if frames else float("nan")
    edit = float(sum(stats.edit.tolist())) / n_vid if n_vid else float("nan")  # sequential, as the evaluators
    return SegmentationResult(
        overlaps=ov.tolist(),
        f1=f1.tolist(),
        edit=edit,
        acc=acc,
        tp=tp.astype(np.int64),
        fp=fp.astype(np.int64),
        fn=fn.astype(np.int64),
        num_videos=n_vid,
        num_frames=frames,
    )


def evaluate_segmentation(
    predictions: Sequence[Any],
    targets: Sequence[Any],
    background_ids: Sequence[int] = (),
    overlaps: Sequence[float] = DEFAULT_OVERLAPS,
    convention: Convention = "mstcn",
) -> SegmentationResult:
    """F1@overlaps, Edit and Acc (percent) of ``(T_v,)`` integer predictions against targets."""
    stats = segmentation_stats(predictions, targets, background_ids, overlaps, convention)
    return reduce_stats(stats, overlaps)


class SegmentationMetric(MergeableMetric):
    """:class:`~tal.core.protocols.Metric` for segmentation: ``update(predictions, targets, video_ids)``
    with ``(T,)`` int64 label tensors/arrays per video; statistics are computed at ``update`` (small
    state to merge and sync). ``compute()`` returns :meth:`SegmentationResult.as_dict`.

    Background is given as ids (``background_ids``) or as names (``background``) resolved against
    ``class_names`` (index = class id, e.g. ``mapping.txt``), possibly later with
    :meth:`set_class_names`. Names not among the classes exclude nothing (as in the evaluators).
    Names that cannot be resolved yet make ``update`` raise.
    """

    state_names = ("correct", "total", "edit", "tp", "fp", "fn")

    def __init__(
        self,
        background_ids: Sequence[int] | None = None,
        background: Sequence[str] = ("background",),
        class_names: Sequence[str] | None = None,
        overlaps: Sequence[float] = DEFAULT_OVERLAPS,
        convention: Convention = "mstcn",
        deduplicate: bool = True,
    ) -> None:
        self.overlaps = _check(convention, overlaps).tolist()
        self.convention: Convention = convention
        self.background = list(background)
        self._given_ids = None if background_ids is None else sorted(int(i) for i in background_ids)
        self.background_ids: list[int] | None = self._given_ids
        if self.background_ids is None and class_names is not None:
            self.set_class_names(class_names)
        elif self.background_ids is None and not self.background:
            self.background_ids = []
        super().__init__(deduplicate=deduplicate)

    def set_class_names(self, class_names: Sequence[str]) -> None:
        """Resolve ``background`` names with the class list (ignored if ``background_ids`` was given)."""
        if self._given_ids is not None:
            return
        names = list(class_names)
        self.background_ids = sorted(i for i, name in enumerate(names) if name in set(self.background))

    def settings(self) -> dict[str, Any]:
        return {"overlaps": self.overlaps, "convention": self.convention, "background_ids": self.background_ids}

    def update(self, predictions: Sequence[Any], targets: Sequence[Any], video_ids: Sequence[str]) -> None:
        """Add one batch of videos: ``predictions[i]`` and ``targets[i]`` are ``(T_i,)`` labels."""
        if self.background_ids is None:
            raise RuntimeError(
                f"SegmentationMetric: background classes {self.background} are given by name; call "
                "set_class_names(names) (the dataset's class list, index = id) or pass background_ids"
            )
        if not (len(predictions) == len(targets) == len(video_ids)):
            raise ValueError(f"{len(predictions)} predictions, {len(targets)} targets, {len(video_ids)} video ids")
        st = segmentation_stats(predictions, targets, self.background_ids, self.overlaps, self.convention)
        self._append(
            video_ids,
            correct=st.correct.tolist(),
            total=st.total.tolist(),
            edit=st.edit.tolist(),
            tp=list(st.tp),
            fp=list(st.fp),
            fn=list(st.fn),
        )

    def result(self) -> SegmentationResult:
        rec = self.records()
        n_o = len(self.overlaps)

        def rows(name: str) -> np.ndarray:
            return np.array(rec[name], np.int64).reshape(-1, n_o)

        stats = SegmentationStats(
            correct=np.array(rec["correct"], np.int64),
            total=np.array(rec["total"], np.int64),
            edit=np.array(rec["edit"], np.float64),
            tp=rows("tp"),
            fp=rows("fp"),
            fn=rows("fn"),
        )
        return reduce_stats(stats, self.overlaps)

    def compute(self) -> dict[str, Any]:
        """``{"F1@10", "F1@25", "F1@50", "Edit", "Acc", ...}`` in percent."""
        return self.result().as_dict()
