"""NW-UCLA (Kinect v1, 20 joints, 1 body) as the release reads it: json files of CTR-GCN's ``all_sqe``.

A file ``aXX_sYY_eZZ_vWW.json`` holds ``{"skeletons": [[[x, y, z] x 20] x T], "label": 1..10}``.
:func:`ucla_eval_transform` is the release's validation feeder: centre on joint 2 of frame 0,
min-max each axis to [-1, 1] over the whole sequence, take ``linspace(0, T - 1, 52)`` frames, then
the modality. :func:`ucla_train_transform` is its training feeder: a random view rotation
(``agx, agy`` integers in [-60, 60] degrees) and scale ``U(0.5, 1.5)`` before the normalisation, and
52 sorted frames drawn without replacement from the frame list repeated 100 times.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from tal.core.errors import DataFormatError
from tal.skeleton_lst.data.transforms import apply_modality
from tal.skeleton_lst.graphs import BONE_PAIRS

__all__ = [
    "UCLA_ACTIONS",
    "read_nw_ucla",
    "ucla_eval_transform",
    "ucla_label_from_name",
    "ucla_train_transform",
    "view_of",
]

WINDOW = 52
NUM_JOINTS = 20
#: NW-UCLA action ids a01..a06, a08, a09, a11, a12 -> labels 0..9
UCLA_ACTIONS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
_NAME = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})")


def ucla_label_from_name(name: str) -> int | None:
    """0-based label from a file name ``aXX_...`` (``None`` if the name has no NW-UCLA action id)."""
    m = _NAME.search(Path(name).name)
    if m is None:
        return None
    action = int(m.group(1))
    return UCLA_ACTIONS.index(action) if action in UCLA_ACTIONS else None


def view_of(name: str) -> int | None:
    m = _NAME.search(Path(name).name)
    return int(m.group(4)) if m else None


def read_nw_ucla(path: str | Path) -> tuple[np.ndarray, int]:
    """Joints ``(T, 20, 3)`` float64 and the 0-based label (the json ``label`` minus 1, else the file
    name's action id) of one NW-UCLA json file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataFormatError(p, f"not a readable json file: {exc}") from None
    if not isinstance(data, dict) or "skeletons" not in data:
        raise DataFormatError(p, "expected a json object with a 'skeletons' field")
    try:
        joints = np.asarray(data["skeletons"], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFormatError(p, "skeletons: not a rectangular (T, 20, 3) list of numbers") from None
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or len(joints) == 0:
        raise DataFormatError(p, f"skeletons: expected shape (T, 20, 3) with T >= 1, got {joints.shape}")
    if not np.isfinite(joints).all():
        raise DataFormatError(p, "skeletons: contains NaN or infinite values")
    from_name = ucla_label_from_name(p.name)
    if "label" in data:
        raw = data["label"]
        if not isinstance(raw, int) or not 1 <= raw <= len(UCLA_ACTIONS):
            raise DataFormatError(p, f"label: expected an integer in 1..{len(UCLA_ACTIONS)}, got {raw!r}")
        label = raw - 1
        if from_name is not None and from_name != label:
            raise DataFormatError(p, f"label: {raw} disagrees with the action id of the file name ({from_name + 1})")
    elif from_name is not None:
        label = from_name
    else:
        raise DataFormatError(p, "no 'label' field and the file name has no NW-UCLA action id (aXX_sYY_eZZ_vWW)")
    return joints, label


def _view_transform(x: np.ndarray, agx: float, agy: float, scale: float) -> np.ndarray:
    ax, ay = math.radians(agx), math.radians(agy)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), math.sin(ax)], [0, -math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, -math.sin(ay)], [0, 1, 0], [math.sin(ay), 0, math.cos(ay)]])
    s = np.diag([scale, scale, scale])
    return (x.reshape(-1, 3) @ (ry @ (rx @ s))).reshape(x.shape)


def _normalise(joints: np.ndarray, agx: float, agy: float, scale: float) -> np.ndarray:
    centred = joints - joints[0, 1, :]
    flat = _view_transform(centred, agx, agy, scale).reshape(-1, 3)
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    if np.any(hi == lo):
        raise ValueError("a coordinate axis is constant over the whole sequence: cannot min-max normalise")
    return (((flat - lo) / (hi - lo)) * 2 - 1).reshape(-1, NUM_JOINTS, 3)


def _finish(frames: np.ndarray, modality: str) -> np.ndarray:
    data = apply_modality(frames, modality, BONE_PAIRS["ucla"], joint_axis=1, time_axis=0)  # (T, V, C)
    return np.transpose(data, (2, 0, 1))[..., None]  # (C, T, V, 1)


def ucla_eval_transform(joints: np.ndarray, modality: str = "joint") -> np.ndarray:
    """``(T, 20, 3)`` joints -> the release's validation input ``(3, 52, 20, 1)`` float64."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected joints (T, 20, 3), got {joints.shape}")
    value = _normalise(joints, 0.0, 0.0, 1.0)
    idx = np.linspace(0, len(value) - 1, WINDOW).astype(int)
    return _finish(value[idx], modality)


def ucla_train_transform(
    joints: np.ndarray, modality: str = "joint", rng: np.random.Generator | None = None
) -> np.ndarray:
    """The release's training input ``(3, 52, 20, 1)`` float64 (random view, scale and frames)."""
    gen = rng if rng is not None else np.random.default_rng()
    agx, agy = int(gen.integers(-60, 61)), int(gen.integers(-60, 61))
    scale = float(gen.uniform(0.5, 1.5))
    value = _normalise(np.asarray(joints, dtype=np.float64), agx, agy, scale)
    length = len(value)
    idx = np.sort(gen.choice(length * 100, WINDOW, replace=False) % length)
    return _finish(value[idx], modality)
