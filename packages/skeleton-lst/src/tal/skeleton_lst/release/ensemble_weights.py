"""The release's ``ensemble.py`` weights of the modality streams (facts)."""

from __future__ import annotations

__all__ = ["ENSEMBLE_WEIGHTS", "STREAM_ORDER", "default_weights"]

STREAM_ORDER = ("joint", "bone", "joint_motion", "bone_motion")
#: number of streams -> weights in STREAM_ORDER (2 streams: joint + alpha * bone, alpha = 1 by default)
ENSEMBLE_WEIGHTS: dict[int, tuple[float, ...]] = {4: (0.8, 0.8, 0.2, 0.2), 3: (0.6, 0.6, 0.4), 2: (1.0, 1.0)}


def default_weights(num_streams: int) -> tuple[float, ...]:
    """The published weights for 2, 3 or 4 streams."""
    if num_streams not in ENSEMBLE_WEIGHTS:
        raise ValueError(f"the release ensembles 2, 3 or 4 streams, got {num_streams}")
    return ENSEMBLE_WEIGHTS[num_streams]
