"""Synthetic skeleton sequences: a few parametric motions on the NTU skeleton (25 joints).

Each class moves a standing rest pose with a different periodic motion (waving the right or left
arm, squatting, walking on the spot, raising both arms, bending forward), with a random phase,
speed, amplitude, body size, global rotation about the vertical axis and joint noise. Arrays are in
the NTU layout ``(3, T, 25, 2)`` (the second body is absent: zeros), in metres, centred on joint 2.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLASSES", "REST_POSE", "synthetic_sequence", "synthetic_set"]

CLASSES = ("wave right hand", "wave left hand", "squat down", "walk on the spot", "raise both arms", "bend forward")

# a standing person, metres, x to the person's left, y up, z towards the camera (0-based NTU joints)
REST_POSE = np.array([
    [0.0, -0.30, 0.0], [0.0, 0.0, 0.0], [0.0, 0.45, 0.0], [0.0, 0.60, 0.0],      # base, mid, neck, head
    [0.18, 0.33, 0.0], [0.20, 0.05, 0.0], [0.21, -0.20, 0.0], [0.21, -0.27, 0.0],  # left arm
    [-0.18, 0.33, 0.0], [-0.20, 0.05, 0.0], [-0.21, -0.20, 0.0], [-0.21, -0.27, 0.0],  # right arm
    [0.10, -0.32, 0.0], [0.11, -0.75, 0.0], [0.11, -1.15, 0.0], [0.11, -1.20, 0.08],  # left leg
    [-0.10, -0.32, 0.0], [-0.11, -0.75, 0.0], [-0.11, -1.15, 0.0], [-0.11, -1.20, 0.08],  # right leg
    [0.0, 0.33, 0.0], [0.22, -0.32, 0.02], [0.20, -0.30, 0.04], [-0.22, -0.32, 0.02], [-0.20, -0.30, 0.04],
])  # fmt: skip
LEFT_ARM, RIGHT_ARM = [5, 6, 7, 21, 22], [9, 10, 11, 23, 24]
LEFT_LEG, RIGHT_LEG = [13, 14, 15], [17, 18, 19]


def _rotate_about(points: np.ndarray, pivot: np.ndarray, angle: float, axis: int) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    rel = points - pivot
    out = rel.copy()
    out[..., i] = c * rel[..., i] - s * rel[..., j]
    out[..., j] = s * rel[..., i] + c * rel[..., j]
    return out + pivot


def synthetic_sequence(label: int, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """One sequence of class ``label``: ``(3, num_frames, 25, 2)`` float32."""
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label must be in [0, {len(CLASSES)}), got {label}")
    size = rng.uniform(0.85, 1.15)
    speed = rng.uniform(0.7, 1.3)
    amp = rng.uniform(0.8, 1.2)
    phase = rng.uniform(0, 2 * np.pi)
    t = np.arange(num_frames) / 30.0
    wave = np.sin(2 * np.pi * speed * t + phase)  # (T,)
    frames = np.repeat(REST_POSE[None] * size, num_frames, axis=0)  # (T, 25, 3)
    for f in range(num_frames):
        pose = frames[f]
        w = wave[f] * amp
        if label in (0, 1):  # raise the upper arm, swing the forearm
            arm, shoulder, elbow = (RIGHT_ARM, 8, 9) if label == 0 else (LEFT_ARM, 4, 5)
            sign = 1.0 if label == 0 else -1.0
            pose[arm] = _rotate_about(pose[arm], pose[shoulder], sign * -2.4, 2)
            pose[arm[1:]] = _rotate_about(pose[arm[1:]], pose[elbow], sign * 0.6 * w, 2)
        elif label == 2:  # squat: hips drop, knees bend forward
            depth = 0.25 * (1 + w) / 2
            pose[:13] += [0, -depth, 0]
            pose[16] += [0, -depth, 0]
            pose[20:] += [0, -depth, 0]
            pose[[13, 17]] += [0, -depth / 2, 0.2 * depth]
        elif label == 3:  # walk on the spot: alternate knee lifts and arm swings
            pose[LEFT_LEG] = _rotate_about(pose[LEFT_LEG], pose[12], 0.6 * max(w, 0), 0)
            pose[RIGHT_LEG] = _rotate_about(pose[RIGHT_LEG], pose[16], 0.6 * max(-w, 0), 0)
            pose[LEFT_ARM] = _rotate_about(pose[LEFT_ARM], pose[4], -0.4 * w, 0)
            pose[RIGHT_ARM] = _rotate_about(pose[RIGHT_ARM], pose[8], 0.4 * w, 0)
        elif label == 4:  # raise both arms up and down
            lift = 1.4 * (1 + w) / 2
            pose[LEFT_ARM] = _rotate_about(pose[LEFT_ARM], pose[4], lift, 2)
            pose[RIGHT_ARM] = _rotate_about(pose[RIGHT_ARM], pose[8], -lift, 2)
        else:  # bend forward at the hips
            upper = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 20, 21, 22, 23, 24]
            pose[upper] = _rotate_about(pose[upper], pose[0], 0.7 * (1 + w) / 2, 0)
    yaw = rng.uniform(-0.5, 0.5)
    frames = _rotate_about(frames, np.zeros(3), yaw, 1)
    frames += rng.normal(0, 0.01, size=frames.shape)
    frames -= frames[0, 1]
    out = np.zeros((3, num_frames, 25, 2), np.float32)
    out[..., 0] = frames.transpose(2, 0, 1)
    return out


def synthetic_set(num_per_class: int, num_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3, T, 25, 2)`` float32 sequences and their ``(N,)`` labels, classes interleaved."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(len(CLASSES)), num_per_class)
    data = np.stack([synthetic_sequence(int(y), num_frames, rng) for y in labels])
    return data, labels
