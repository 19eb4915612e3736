"""Input generators shared by the tests."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

# Coordinates on a coarse grid make exact ties, identical and touching segments likely.
coord = st.one_of(
    st.integers(-4, 40).map(lambda v: v * 0.5),
    st.floats(-50, 50, allow_nan=False, allow_infinity=False, width=32),
)


@st.composite
def segment_arrays(draw, min_size: int = 0, max_size: int = 40, inverted: bool = True):
    """(N, 2) float64 numpy segments: normal, zero-length, identical and (optionally) inverted."""
    n = draw(st.integers(min_size, max_size))
    rows = []
    for _ in range(n):
        kind = draw(st.sampled_from(["normal", "normal", "normal", "zero", "dup", "inverted"]))
        if kind == "dup" and rows:
            rows.append(rows[draw(st.integers(0, len(rows) - 1))])
            continue
        s = draw(coord)
        if kind == "zero":
            rows.append((s, s))
        elif kind == "inverted" and inverted:
            rows.append((s, s - draw(st.floats(0.5, 20, width=32))))
        else:
            rows.append((s, s + draw(st.floats(0.5, 30, width=32))))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


@st.composite
def score_arrays(draw, n: int):
    """Scores in [0, 1] with many ties (a few distinct levels) or continuous values."""
    if draw(st.booleans()):
        levels = draw(st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.3, 0.5, 0.9, 1.0]), min_size=1, max_size=3))
        return np.asarray([draw(st.sampled_from(levels)) for _ in range(n)], dtype=np.float64)
    return np.asarray(draw(st.lists(st.floats(0, 1, width=32), min_size=n, max_size=n)), dtype=np.float64)


def thumos_like(n: int, num_classes: int = 20, seed: int = 0, length: float = 2304.0):
    """Candidates shaped like ActionFormer THUMOS14 outputs: many overlapping segments, skewed classes."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(n, generator=g) * length
    widths = torch.exp(torch.rand(n, generator=g) * 6.0)  # 1 .. 400 grid units
    segs = torch.stack([centers - widths / 2, centers + widths / 2], 1).clamp(0, length)
    scores = torch.rand(n, generator=g) ** 3
    probs = 1.0 / torch.arange(1, num_classes + 1, dtype=torch.float64)
    labels = torch.multinomial(probs, n, replacement=True, generator=g)
    return segs.float(), scores.float(), labels


def noncontiguous(t: torch.Tensor) -> torch.Tensor:
    """Same values, non-contiguous storage."""
    if t.dim() == 1:
        wide = torch.empty((t.shape[0], 2), dtype=t.dtype)
        wide[:, 0] = t
        return wide[:, 0]
    return t.t().contiguous().t() if t.dim() == 2 else t.transpose(-1, -2).contiguous().transpose(-1, -2)
