"""The widely used NTU RGB+D preprocessing (CTR-GCN's ``data/ntu*/``, from SGN), from raw files to arrays.

Per sequence (:func:`denoised_joints`):

1. denoise bodies: drop bodies seen in at most 11 frames; if several remain, drop those whose
   frames are mostly implausible (x spread > 0.8 * y spread in at least 69.754% of their frames)
   and lower the motion of the others to that of their plausible frames;
2. one body left: its joints ``(F, 75)``; otherwise the bodies sorted by motion (largest first) are
   packed into two actors (a body joins actor 1 if its frames do not overlap actor 1's, else actor 2
   if not overlapping actor 2's) ``(F, 150)``, and frames where both are missing are removed;
3. :func:`translate`: subtract the spine-middle joint (2) of actor 1's first non-empty frame from
   everything, keeping missing actor frames at zero;
4. :func:`pad_frames`: two actors side by side (150 values) padded with zeros to 300 frames.

:func:`split_indices` gives the cross-subject / cross-view (NTU60) and cross-subject / cross-setup
(NTU120) train and test indices in the release's order; :func:`write_npz` writes
``x_train (N, 300, 150)``, one-hot ``y_train`` and the test pair, like ``NTU60_CS.npz``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tal.skeleton_lst.data.ntu_skeleton import NTUBody, NTUSkeleton, parse_ntu_name

__all__ = [
    "BENCHMARKS",
    "denoise_bodies",
    "denoised_joints",
    "pad_frames",
    "split_indices",
    "translate",
    "write_npz",
]

logger = logging.getLogger(__name__)

NOISE_LENGTH = 11
NOISE_SPREAD_XY = 0.8
NOISE_SPREAD_RATIO = 0.69754
MAX_FRAMES = 300

NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN = (
    *NTU60_XSUB_TRAIN,
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94,
    95, 97, 98, 100, 103,
)  # fmt: skip
#: benchmark -> (field of the sample name, train ids in order, test ids in order)
BENCHMARKS: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {
    "ntu60-xsub": ("performer", NTU60_XSUB_TRAIN, tuple(i for i in range(1, 41) if i not in NTU60_XSUB_TRAIN)),
    "ntu60-xview": ("camera", (2, 3), (1,)),
    "ntu120-xsub": ("performer", NTU120_XSUB_TRAIN, tuple(i for i in range(1, 107) if i not in NTU120_XSUB_TRAIN)),
    "ntu120-xset": ("setup", tuple(range(2, 33, 2)), tuple(range(1, 33, 2))),
}


def _plausible_frames(joints: np.ndarray) -> np.ndarray:
    """Indices of frames whose x spread is at most 0.8 times the y spread."""
    spread_x = joints[:, :, 0].max(1) - joints[:, :, 0].min(1)
    spread_y = joints[:, :, 1].max(1) - joints[:, :, 1].min(1)
    return np.flatnonzero(spread_x <= NOISE_SPREAD_XY * spread_y)


def denoise_bodies(skeleton: NTUSkeleton) -> list[NTUBody]:
    """The bodies kept by the length and spread rules, sorted by motion (largest first) when several."""
    bodies = {k: v for k, v in skeleton.bodies.items() if len(v.interval) > NOISE_LENGTH}
    if len(bodies) == 1:
        return list(bodies.values())
    for body_id in list(bodies):
        if len(bodies) == 1:
            break
        body = bodies[body_id]
        valid = _plausible_frames(body.joints)
        noise = len(body.interval) - len(valid)
        if noise == 0:
            continue
        if noise / float(len(body.interval)) >= NOISE_SPREAD_RATIO:
            del bodies[body_id]
        else:
            assert body.motion is not None
            body.motion = min(body.motion, float(np.sum(np.var(body.joints[valid].reshape(-1, 3), axis=0))))
    if len(bodies) == 1:
        return list(bodies.values())
    return sorted(bodies.values(), key=lambda b: b.motion or 0.0, reverse=True)


def denoised_joints(skeleton: NTUSkeleton) -> np.ndarray:
    """``(F, 75)`` (one body) or ``(F', 150)`` (two actors, empty frames removed) float32 joints."""
    n = skeleton.num_frames
    if len(skeleton.bodies) == 1:
        body = next(iter(skeleton.bodies.values()))
        out = np.zeros((n, 75), np.float32)
        out[body.interval[0] : body.interval[-1] + 1] = body.joints.reshape(-1, 75)
        return out
    bodies = denoise_bodies(skeleton)
    if not bodies:
        raise ValueError(f"{skeleton.name}: no body is tracked in more than {NOISE_LENGTH} frames")
    if len(bodies) == 1:
        out = np.zeros((n, 75), np.float32)
        out[bodies[0].interval[0] : bodies[0].interval[-1] + 1] = bodies[0].joints.reshape(-1, 75)
    else:
        out = np.zeros((n, 150), np.float32)
        first = bodies[0]
        start1, end1 = first.interval[0], first.interval[-1]
        out[start1 : end1 + 1, :75] = first.joints.reshape(-1, 75)
        start2, end2 = 0, 0  # actor 2's interval starts empty (as the release initialises it)
        for body in bodies[1:]:
            start, end = body.interval[0], body.interval[-1]
            if min(end1, end) - max(start1, start) <= 0:
                out[start : end + 1, :75] = body.joints.reshape(-1, 75)
                start1, end1 = min(start, start1), max(end, end1)
            elif min(end2, end) - max(start2, start) <= 0:
                out[start : end + 1, 75:] = body.joints.reshape(-1, 75)
                start2, end2 = min(start, start2), max(end, end2)
    if len(skeleton.bodies) > 1:  # frames where every kept actor is missing are removed
        out = out[out.sum(axis=1) != 0]
    return out


def translate(joints: np.ndarray) -> np.ndarray:
    """Joints ``(F, 75|150)`` minus joint 2 of actor 1's first non-empty frame; missing actors stay 0."""
    out = np.array(joints, dtype=np.float32, copy=True)
    nonzero = np.flatnonzero(np.any(out[:, :75] != 0, axis=1))
    first = nonzero[0] if len(nonzero) else len(out)
    if first >= len(out):
        raise ValueError("the sequence has no frame with actor 1")
    origin = out[first, 3:6].copy()
    if out.shape[1] == 150:
        missing1 = out[:, :75].sum(axis=1) == 0
        missing2 = out[:, 75:].sum(axis=1) == 0
        out -= np.tile(origin, 50)
        out[missing1, :75] = 0
        out[missing2, 75:] = 0
    else:
        out -= np.tile(origin, 25)
    return out


def pad_frames(joints: np.ndarray, num_frames: int = MAX_FRAMES) -> np.ndarray:
    """``(num_frames, 150)`` float32: one actor is followed by 75 zeros; frames past the end are 0."""
    out = np.zeros((num_frames, 150), np.float32)
    n = min(len(joints), num_frames)
    if len(joints) > num_frames:
        logger.warning("sequence of %d frames cut to %d", len(joints), num_frames)
    out[:n, : joints.shape[1]] = joints[:n]
    return out


def preprocess(skeleton: NTUSkeleton, num_frames: int = MAX_FRAMES) -> np.ndarray:
    """A parsed file -> its ``(300, 150)`` row of the widely used NTU arrays."""
    return pad_frames(translate(denoised_joints(skeleton)), num_frames)


def split_indices(names: Sequence[str], benchmark: str) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices into ``names`` for a benchmark, grouped by id in the release's order."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown NTU benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
    field, train_ids, test_ids = BENCHMARKS[benchmark]
    values = np.array([getattr(parse_ntu_name(n), field) for n in names])
    if benchmark.startswith("ntu60"):
        actions = np.array([parse_ntu_name(n).action for n in names])
        if (actions > 60).any():
            raise ValueError(f"{benchmark}: samples of actions above A060 are not NTU60 samples")

    def gather(ids: tuple[int, ...]) -> np.ndarray:
        parts = [np.flatnonzero(values == i) for i in ids]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    return gather(train_ids), gather(test_ids)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    out = np.zeros((len(labels), num_classes))
    out[np.arange(len(labels)), labels] = 1
    return out


def write_npz(names: Sequence[str], rows: np.ndarray, benchmark: str, out: str | Path) -> Path:
    """Write ``x_train``/``y_train``/``x_test``/``y_test`` of ``rows (N, 300, 150)`` for a benchmark."""
    from tal.core.formats.atomic import atomic_open

    train, test = split_indices(names, benchmark)
    labels = np.array([parse_ntu_name(n).label for n in names])
    k = 60 if benchmark.startswith("ntu60") else 120
    path = Path(out)
    with atomic_open(path, "wb") as f:
        np.savez(
            f,
            x_train=rows[train],
            y_train=one_hot(labels[train], k),
            x_test=rows[test],
            y_test=one_hot(labels[test], k),
        )
    return path
