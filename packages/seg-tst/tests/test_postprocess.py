"""Post-processing rules of the releases against hand examples and the loop oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import release_tst as oracle

from tal.core.types import Segments
from tal.seg_tst.postprocess import (
    labels_to_segments,
    median_filter_labels,
    median_filter_probs,
    purge_short_segments,
    restore_full_sequence,
    upsample_repeat,
)


def test_purge_hand_example() -> None:
    labels = torch.tensor([1, 1, 1, 1, 2, 3, 3, 3, 3, 3, 4, 4])
    # [2] (1 frame) splits at its middle (mid = start + 0): goes to the next class; [4, 4] (last) → previous
    assert purge_short_segments(labels, 2).tolist() == [1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3]
    # DiffAct's convention: the last segment counts one frame less and keeps its last frame
    assert purge_short_segments(labels, 2, convention="diffact").tolist() == [1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 4]
    two = torch.tensor([5, 5, 7, 7, 7, 7, 7])
    assert purge_short_segments(two, 2).tolist() == [7] * 7
    lone = torch.tensor([3, 3])
    assert purge_short_segments(lone, 3).tolist() == [3, 3]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.integers(0, 4), st.booleans())
def test_purge_equals_the_loop(labels: list[int], value: int, diffact: bool) -> None:
    conv = "diffact" if diffact else "tst"
    ours = purge_short_segments(torch.tensor(labels), value, convention=conv).tolist()
    assert ours == oracle.purge_loop(labels, value, diffact)


def test_median_filters() -> None:
    labels = torch.tensor([1, 1, 5, 1, 1, 2, 2, 2])
    assert median_filter_labels(labels, 3).tolist() == [1, 1, 1, 1, 1, 2, 2, 2]
    probs = torch.tensor([[0.9, 0.1, 0.9], [0.1, 0.9, 0.1]])
    out = median_filter_probs(probs, 3)
    assert out.argmax(0).tolist() == [0, 0, 0]
    torch.testing.assert_close(out.sum(0), torch.ones(3))


def test_upsampling() -> None:
    assert upsample_repeat(torch.tensor([1, 2, 3]), 2, 5).tolist() == [1, 1, 2, 2, 3]
    assert upsample_repeat(torch.tensor([1, 2]), 2, 6).tolist() == [1, 1, 2, 2, 2, 2]
    # 10 frames, rate 4, ticks at 2, 6 (left offset 2, right offset 1): nearest tick, ties to the lower one
    out = restore_full_sequence(torch.tensor([7, 9]), 10, 2, 1, 4)
    assert out.tolist() == [7, 7, 7, 7, 7, 9, 9, 9, 9, 9]
    with pytest.raises(ValueError, match="sample ticks"):
        restore_full_sequence(torch.tensor([7, 9, 1]), 10, 2, 1, 4)
    same = restore_full_sequence(torch.tensor([3, 1, 2]), 3, 0, 0, 1)
    assert same.tolist() == [3, 1, 2]


def test_labels_to_segments_in_seconds() -> None:
    seg = labels_to_segments(torch.tensor([0, 0, 4, 4, 4]), fps=2.0, sample_rate=1)
    assert isinstance(seg, Segments)
    assert seg.segments.tolist() == [[0.0, 1.0], [1.0, 2.5]] and seg.labels.tolist() == [0, 4]
    assert np.allclose(
        labels_to_segments(torch.tensor([1, 2]), fps=1.0, sample_rate=8).segments.numpy(), [[0, 8], [8, 16]]
    )
