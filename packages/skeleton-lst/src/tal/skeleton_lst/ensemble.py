"""Ensembles of per-stream scores (joint, bone, joint motion, bone motion) with the release's weights.

A score file (``.npz``) holds ``names (N,)``, ``scores (N, K)`` and ``labels (N,)`` of one stream on
one split (``tal lst scores`` writes it). :func:`ensemble` adds the streams' scores, each multiplied
by its weight, after matching samples by name, as the release's ``ensemble.py`` does with its
``epoch1_test_score.pkl`` files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tal.core.errors import DataFormatError
from tal.core.metrics.recognition import RecognitionResult, evaluate_recognition
from tal.skeleton_lst.release.ensemble_weights import STREAM_ORDER, default_weights

__all__ = ["StreamScores", "ensemble", "read_scores", "write_scores"]


@dataclass
class StreamScores:
    """Scores ``(N, K)`` of one stream with sample ``names`` and ``labels`` ``(N,)``."""

    names: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def write_scores(path: str | Path, names: Sequence[str], scores: np.ndarray, labels: Sequence[int]) -> Path:
    from tal.core.formats.atomic import atomic_open

    p = Path(path)
    with atomic_open(p, "wb") as f:
        np.savez(
            f,
            names=np.asarray(names, dtype=str),
            scores=np.asarray(scores, np.float32),
            labels=np.asarray(labels, np.int64),
        )
    return p


def read_scores(path: str | Path) -> StreamScores:
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(p, "score file not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in ("names", "scores", "labels") if k not in z.files]
            if missing:
                raise DataFormatError(p, f"missing arrays {missing} (a score file has names, scores, labels)")
            out = StreamScores(z["names"], z["scores"].astype(np.float64), z["labels"].astype(np.int64))
    except (OSError, ValueError) as exc:
        raise DataFormatError(p, f"not a readable .npz score file: {exc}") from None
    if out.scores.ndim != 2 or len(out.scores) != len(out.names) or len(out.labels) != len(out.names):
        raise DataFormatError(
            p, f"scores {out.scores.shape}, names {out.names.shape}, labels {out.labels.shape} disagree"
        )
    return out


def ensemble(
    streams: Mapping[str, StreamScores], weights: Sequence[float] | None = None, top_k: Sequence[int] = (1, 5)
) -> tuple[np.ndarray, RecognitionResult]:
    """Weighted sum of the streams' scores (in :data:`STREAM_ORDER`) and its accuracy.

    Streams must hold the same samples (matched by name) with the same labels. ``weights`` default
    to the release's for the number of streams (4: 0.8, 0.8, 0.2, 0.2; 3: 0.6, 0.6, 0.4; 2: 1, 1).
    """
    order = [s for s in STREAM_ORDER if s in streams] + [s for s in streams if s not in STREAM_ORDER]
    if not order:
        raise ValueError("no stream to ensemble")
    w = tuple(weights) if weights is not None else default_weights(len(order))
    if len(w) != len(order):
        raise ValueError(f"{len(w)} weights for {len(order)} streams ({', '.join(order)})")
    base = streams[order[0]]
    index = {str(n): i for i, n in enumerate(base.names)}
    total = np.zeros_like(base.scores)
    for name, weight in zip(order, w, strict=True):
        s = streams[name]
        if set(map(str, s.names)) != set(index):
            raise ValueError(f"stream {name!r} does not hold the same samples as {order[0]!r}")
        rows = np.array([index[str(n)] for n in s.names])
        if not np.array_equal(base.labels[rows], s.labels):
            raise ValueError(f"stream {name!r} has other labels than {order[0]!r} for the same samples")
        total[rows] += weight * s.scores
    return total, evaluate_recognition(total, base.labels, top_k)
