"""Segment extraction, pooling, neighbourhood pairs and sparse attention against hand values and loop oracles."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import release_tst as oracle

from tal.seg_tst.modeling.segments import (
    near_boundaries,
    neighbourhood_pairs,
    paint,
    segment_mean,
    segments_of,
    sinusoid_table,
    sparse_segment_attention,
)

label_lists = st.lists(st.integers(0, 3), min_size=1, max_size=60)


def test_segments_hand_example() -> None:
    seg = segments_of(torch.tensor([2, 2, 0, 0, 0, 2, 1]))
    assert seg.starts.tolist() == [0, 2, 5, 6]
    assert seg.ends.tolist() == [2, 5, 6, 7]
    assert seg.labels.tolist() == [2, 0, 2, 1]
    assert seg.frame_segment.tolist() == [0, 0, 1, 1, 1, 2, 3]
    assert seg.lengths.tolist() == [2, 3, 1, 1]


def test_segment_mean_hand_example() -> None:
    feats = torch.tensor([[1.0], [3.0], [10.0], [0.0], [2.0]])
    seg = segments_of(torch.tensor([0, 0, 1, 2, 2]))
    assert segment_mean(feats, seg).reshape(-1).tolist() == [2.0, 10.0, 1.0]


@settings(max_examples=60, deadline=None)
@given(label_lists)
def test_segments_and_pooling_equal_the_loops(labels: list[int]) -> None:
    seg = segments_of(torch.tensor(labels))
    runs = oracle.runs_loop(labels)
    assert list(zip(seg.labels.tolist(), seg.starts.tolist(), seg.ends.tolist(), strict=True)) == runs
    feats = torch.randn(len(labels), 3)
    torch.testing.assert_close(segment_mean(feats, seg), oracle.segment_pool_loop(labels, feats))
    assert paint(seg, seg.labels).tolist() == labels


@settings(max_examples=60, deadline=None)
@given(label_lists)
def test_neighbourhood_pairs_are_the_release_mask(labels: list[int]) -> None:
    seg = segments_of(torch.tensor(labels))
    ps, pf = neighbourhood_pairs(seg)
    dense = torch.zeros(seg.num_segments, len(labels), dtype=torch.bool)
    dense[ps, pf] = True
    assert torch.equal(dense, oracle.cross_attention_mask_loop(labels))
    assert ps.numel() == int(dense.sum())  # no duplicate pairs


def test_neighbourhood_pairs_hand_example() -> None:
    seg = segments_of(torch.tensor([0, 0, 1, 2, 2, 2]))
    ps, pf = neighbourhood_pairs(seg)
    assert ps.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]
    assert pf.tolist() == [0, 1, 2, 0, 1, 2, 3, 4, 5, 2, 3, 4, 5]


@settings(max_examples=40, deadline=None)
@given(label_lists)
def test_sparse_attention_equals_dense_masked_softmax(labels: list[int]) -> None:
    seg = segments_of(torch.tensor(labels))
    ps, pf = neighbourhood_pairs(seg)
    q = torch.randn(seg.num_segments, 8)
    k = torch.randn(len(labels), 8)
    v = torch.randn(len(labels), 5)
    ours = sparse_segment_attention(q, k, v, ps, pf, seg.num_segments)
    ref = oracle.dense_cross_attention(q, k, v, oracle.cross_attention_mask_loop(labels))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_sparse_attention_gradients_equal_dense() -> None:
    labels = [0, 0, 1, 1, 1, 2, 0, 0]
    seg = segments_of(torch.tensor(labels))
    ps, pf = neighbourhood_pairs(seg)
    q1 = torch.randn(seg.num_segments, 4, requires_grad=True)
    k1 = torch.randn(len(labels), 4, requires_grad=True)
    v1 = torch.randn(len(labels), 4, requires_grad=True)
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q1, k1, v1))
    sparse_segment_attention(q1, k1, v1, ps, pf, seg.num_segments).pow(2).sum().backward()
    oracle.dense_cross_attention(q2, k2, v2, oracle.cross_attention_mask_loop(labels)).pow(2).sum().backward()
    for a, b in ((q1, q2), (k1, k2), (v1, v2)):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)


def test_sinusoid_table_equals_the_numpy_formula() -> None:
    torch.testing.assert_close(sinusoid_table(37, 12), oracle.sinusoid_loop(37, 12))
    # position 1, dim 4: angles 1, 1, 1/100, 1/100 (rate 10000^(2 * (j // 2) / 4))
    expected = [math.sin(1.0), math.cos(1.0), math.sin(0.01), math.cos(0.01)]
    assert sinusoid_table(2, 4)[1].tolist() == pytest.approx(expected, rel=1e-7)


def test_near_boundaries_hand_example() -> None:
    seg = segments_of(torch.tensor([0] * 6 + [1] * 6))
    assert near_boundaries(seg, 2).tolist() == [False] * 4 + [True] * 4 + [False] * 4
    assert not near_boundaries(segments_of(torch.zeros(5, dtype=torch.long)), 3).any()
