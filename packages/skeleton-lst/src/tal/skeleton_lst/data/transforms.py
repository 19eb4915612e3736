"""Skeleton transforms of the release's feeders, on ``(C, T, V, M)`` arrays.

* :func:`valid_crop_resize`: crop the valid frames (a random ratio in ``p_interval`` for training,
  a centred ``p`` for testing) and resize to ``window`` frames with bilinear interpolation
  (``F.interpolate``, ``align_corners=False``), as ``feeders/tools.py``;
* :func:`random_rot`: one random rotation ``Rz @ Ry @ Rx`` per sample, angles ``U(-theta, theta)``;
* :func:`to_bone` / :func:`to_motion`: the bone (``x[v1] - x[v2]`` per pair) and motion
  (``x[t + 1] - x[t]``, last frame 0) modalities; :func:`apply_modality` chains them by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MODALITIES",
    "apply_modality",
    "random_rot",
    "rotation_matrix",
    "to_bone",
    "to_motion",
    "valid_crop_resize",
    "valid_frames",
]

MODALITIES = ("joint", "bone", "joint_motion", "bone_motion")


def valid_frames(data: np.ndarray) -> int:
    """Frames of ``(C, T, V, M)`` data whose values are not all zero (the padding is at the end)."""
    return int(np.sum(data.sum(0).sum(-1).sum(-1) != 0))


def valid_crop_resize(
    data: np.ndarray,
    valid_frame_num: int,
    p_interval: Sequence[float],
    window: int,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """``(C, T, V, M)`` -> ``(C, window, V, M)`` float32 (see the module docstring).

    Training (two values in ``p_interval``): ratio ``p ~ U(p0, p1)``, length
    ``clip(floor(valid * p), 64, valid)``, offset uniform; test (one value): the centred ``p`` part.
    """
    c, _, v, m = data.shape
    if valid_frame_num < 1:
        raise ValueError("the sample has no valid frame")
    if len(p_interval) == 1:
        bias = int((1 - p_interval[0]) * valid_frame_num / 2)
        cropped = data[:, bias : valid_frame_num - bias]
    else:
        gen = rng if rng is not None else np.random.default_rng()
        p = gen.random() * (p_interval[1] - p_interval[0]) + p_interval[0]
        length = int(np.minimum(np.maximum(int(np.floor(valid_frame_num * p)), 64), valid_frame_num))
        bias = int(gen.integers(0, valid_frame_num - length + 1))
        cropped = data[:, bias : bias + length]
    length = cropped.shape[1]
    t = torch.tensor(cropped, dtype=torch.float32).permute(0, 2, 3, 1).reshape(1, 1, c * v * m, length)
    out = F.interpolate(t, size=(c * v * m, window), mode="bilinear", align_corners=False)
    return out.reshape(c, v, m, window).permute(0, 3, 1, 2).contiguous().numpy()


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """``Rz @ Ry @ Rx`` ``(3, 3)`` for angles ``(ax, ay, az)`` in radians (the release's ``_rot``)."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rz = np.array([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rot(data: np.ndarray, theta: float = 0.3, rng: np.random.Generator | None = None) -> np.ndarray:
    """Rotate ``(3, T, V, M)`` coordinates by one random ``Rz Ry Rx`` with angles in ``[-theta, theta]``."""
    gen = rng if rng is not None else np.random.default_rng()
    rot = rotation_matrix(gen.uniform(-theta, theta, size=3)).astype(np.float32)
    return np.einsum("ij,jtvm->itvm", rot, data.astype(np.float32)).astype(np.float32)


def to_bone(data: np.ndarray, pairs: Sequence[tuple[int, int]], joint_axis: int = 2) -> np.ndarray:
    """``bone[v1] = x[v1] - x[v2]`` for 0-based ``(v1, v2)`` pairs along ``joint_axis``; other joints 0."""
    x = np.moveaxis(data, joint_axis, 0)
    out = np.zeros_like(x)
    for v1, v2 in pairs:
        out[v1] = x[v1] - x[v2]
    return np.moveaxis(out, 0, joint_axis)


def to_motion(data: np.ndarray, time_axis: int = 1) -> np.ndarray:
    """``x[t + 1] - x[t]`` along ``time_axis``; the last frame is 0."""
    x = np.moveaxis(data, time_axis, 0)
    out = np.zeros_like(x)
    out[:-1] = x[1:] - x[:-1]
    return np.moveaxis(out, 0, time_axis)


def apply_modality(
    data: np.ndarray, modality: str, pairs: Sequence[tuple[int, int]], joint_axis: int = 2, time_axis: int = 1
) -> np.ndarray:
    """``joint`` (unchanged), ``bone``, ``joint_motion`` or ``bone_motion`` (bone first, then motion)."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
    if modality.startswith("bone"):
        data = to_bone(data, pairs, joint_axis)
    if modality.endswith("motion"):
        data = to_motion(data, time_axis)
    return data
