"""batched_nms: every CPU backend against the ActionFormer oracle."""

from __future__ import annotations

import _af_oracle as oracle
import numpy as np
import pytest
import torch
from _checks import check_batched
from _helpers import noncontiguous, score_arrays, segment_arrays, thumos_like
from hypothesis import given
from hypothesis import strategies as st

import tal.cuda_ops as ops


@st.composite
def batched_case(draw, max_size: int = 40):
    segs = draw(segment_arrays(max_size=max_size, inverted=False))
    n = len(segs)
    scores = draw(score_arrays(n))
    num_classes = draw(st.integers(1, 4))
    labels = np.asarray([draw(st.integers(0, num_classes - 1)) for _ in range(n)], dtype=np.int64)
    params = dict(
        iou_threshold=draw(st.sampled_from([0.1, 0.5, 0.7])),
        min_score=draw(st.sampled_from([0.0, 0.001, 0.2])),
        max_seg_num=draw(st.sampled_from([0, 1, 3, 200])),
        use_soft_nms=draw(st.booleans()),
        multiclass=draw(st.booleans()),
        sigma=draw(st.sampled_from([0.3, 0.5])),
        voting_thresh=draw(st.sampled_from([0.0, 0.5, 0.75])),
        method=draw(st.sampled_from([0, 1, 2, 2])),
    )
    return segs, scores, labels, params


@given(case=batched_case())
def test_batched_matches_oracle(kernels, case):
    segs, scores, labels, params = case
    check_batched(
        kernels,
        torch.tensor(segs, dtype=torch.float32),
        torch.tensor(scores, dtype=torch.float32),
        torch.tensor(labels),
        **params,
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@given(case=batched_case(max_size=20))
def test_batched_dtypes(kernels, dtype, case):
    segs, scores, labels, params = case
    check_batched(
        kernels, torch.tensor(segs, dtype=dtype), torch.tensor(scores, dtype=dtype), torch.tensor(labels), **params
    )


@pytest.mark.parametrize("multiclass", [True, False])
@pytest.mark.parametrize("use_soft_nms", [True, False])
def test_thumos_sized_input(kernels, multiclass, use_soft_nms):
    segs, scores, labels = thumos_like(600, seed=5)
    check_batched(
        kernels,
        segs,
        scores,
        labels,
        multiclass=multiclass,
        use_soft_nms=use_soft_nms,
        max_seg_num=200,
        voting_thresh=0.7,
    )


def test_tied_scores_across_classes(kernels):
    # Many exactly tied scores in different classes: the final order is the CPU
    # torch.sort order of the concatenated per-class results, as in ActionFormer.
    n = 150
    segs = torch.stack([torch.arange(n) * 3.0, torch.arange(n) * 3.0 + 2.0], 1)
    scores = torch.full((n,), 0.5)
    scores[::7] = 0.25
    labels = torch.arange(n) % 5
    for soft in (True, False):
        check_batched(kernels, segs, scores, labels, use_soft_nms=soft, max_seg_num=1000)


def test_identical_segments_all_classes(kernels):
    segs = torch.tensor([[2.0, 8.0]] * 12)
    scores = torch.linspace(0.1, 0.9, 12)
    labels = torch.tensor([0, 1, 2] * 4)
    for multiclass in (True, False):
        for soft in (True, False):
            check_batched(kernels, segs, scores, labels, multiclass=multiclass, use_soft_nms=soft)


def test_empty_and_single(kernels):
    e_segs, e_sc, e_lab = ops.batched_nms(
        torch.zeros((0, 2)), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.1, 0.001, 100
    )
    assert e_segs.shape == (0, 2) and e_sc.shape == (0,) and e_lab.shape == (0,)
    check_batched(kernels, torch.tensor([[1.0, 2.0]]), torch.tensor([0.3]), torch.tensor([4]))


def test_nan_scores_raise(kernels):
    with pytest.raises(ValueError, match="NaN"):
        check_batched(
            kernels, torch.tensor([[1.0, 2.0], [0.0, 3.0]]), torch.tensor([0.3, float("nan")]), torch.tensor([0, 0])
        )


def test_public_api_matches_oracle_noncontiguous():
    segs, scores, labels = thumos_like(400, seed=9)
    out = ops.batched_nms(
        noncontiguous(segs), noncontiguous(scores), noncontiguous(labels), 0.1, 0.001, 200, True, False, 0.5, 0.7
    )
    exp = oracle.batched_nms(segs, scores, labels, 0.1, 0.001, 200, True, False, 0.5, 0.7)
    assert out[2].tolist() == exp[2].tolist()
    assert torch.equal(out[1], torch.tensor(exp[1])) or ops.backend_info()["batched_nms"]["cpu"].impl != "cpu-ext"
    torch.testing.assert_close(out[0], torch.tensor(exp[0]), rtol=1e-5, atol=1e-5)


def test_voting_is_off_for_multiclass():
    segs, scores, labels = thumos_like(300, seed=4)
    a = ops.batched_nms(segs, scores, labels, 0.1, 0.001, 100, True, True, 0.5, 0.9)
    b = ops.batched_nms(segs, scores, labels, 0.1, 0.001, 100, True, True, 0.5, 0.0)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    c = ops.batched_nms(segs, scores, labels, 0.1, 0.001, 100, True, False, 0.5, 0.5)
    d = ops.batched_nms(segs, scores, labels, 0.1, 0.001, 100, True, False, 0.5, 0.0)
    assert not torch.equal(c[0], d[0])  # voting moves boundaries when class-agnostic


def test_public_api_validation():
    segs, scores, labels = torch.tensor([[0.0, 1.0]]), torch.tensor([0.5]), torch.tensor([0])
    with pytest.raises(ValueError, match="max_seg_num"):
        ops.batched_nms(segs, scores, labels, 0.1, 0.0, -1)
    with pytest.raises(TypeError, match="labels"):
        ops.batched_nms(segs, scores, labels.float(), 0.1, 0.0, 5)
    with pytest.raises(ValueError, match="labels must have shape"):
        ops.batched_nms(segs, scores, torch.tensor([0, 1]), 0.1, 0.0, 5)
    with pytest.raises(ValueError, match="soft_nms_method"):
        ops.batched_nms(segs, scores, labels, 0.1, 0.0, 5, soft_nms_method="box")
