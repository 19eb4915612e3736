"""nms_1d and soft_nms_1d: every CPU backend against the ActionFormer oracle."""

from __future__ import annotations

import _af_oracle as oracle
import numpy as np
import pytest
import torch
from _checks import check_nms, check_soft_nms
from _helpers import noncontiguous, score_arrays, segment_arrays, thumos_like
from hypothesis import given
from hypothesis import strategies as st

import tal.cuda_ops as ops
from tal.cuda_ops import _backend, _composite, _reference


@st.composite
def nms_case(draw, max_size: int = 30):
    segs = draw(segment_arrays(max_size=max_size))
    scores = draw(score_arrays(len(segs)))
    return segs, scores


methods = st.sampled_from([0, 1, 2])
thresholds = st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 1.0])


@given(
    case=nms_case(),
    thr=thresholds,
    sigma=st.sampled_from([0.1, 0.5, 1.0]),
    low=st.sampled_from([0.0, 0.001, 0.2]),
    method=methods,
)
def test_soft_nms_matches_oracle(kernels, case, thr, sigma, low, method):
    segs, scores = case
    check_soft_nms(
        kernels,
        torch.tensor(segs, dtype=torch.float32),
        torch.tensor(scores, dtype=torch.float32),
        thr,
        sigma,
        low,
        method,
    )


@given(case=nms_case(), thr=thresholds)
def test_nms_matches_oracle(kernels, case, thr):
    segs, scores = case
    check_nms(kernels, torch.tensor(segs, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32), thr)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@given(case=nms_case(max_size=20), method=methods)
def test_soft_nms_dtypes(kernels, dtype, case, method):
    segs, scores = case
    check_soft_nms(kernels, torch.tensor(segs, dtype=dtype), torch.tensor(scores, dtype=dtype), 0.3, 0.5, 0.01, method)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@given(case=nms_case(max_size=20))
def test_nms_dtypes(kernels, dtype, case):
    segs, scores = case
    check_nms(kernels, torch.tensor(segs, dtype=dtype), torch.tensor(scores, dtype=dtype), 0.3)


def test_adversarial_cases(kernels):
    f = torch.float32
    cases = {
        "empty": (torch.zeros((0, 2), dtype=f), torch.zeros(0, dtype=f)),
        "one": (torch.tensor([[1.0, 3.0]]), torch.tensor([0.5])),
        "identical": (torch.tensor([[1.0, 3.0]] * 7), torch.full((7,), 0.5)),
        "identical_segs_distinct_scores": (
            torch.tensor([[1.0, 3.0]] * 6),
            torch.tensor([0.1, 0.9, 0.3, 0.9, 0.2, 0.9]),
        ),
        "all_tied_disjoint": (torch.tensor([[float(2 * k), 2 * k + 1.0] for k in range(9)]), torch.full((9,), 0.25)),
        "all_below_min": (torch.tensor([[0.0, 1.0], [0.5, 1.5], [3.0, 4.0]]), torch.tensor([1e-4, 2e-4, 1e-5])),
        "zero_length": (torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0]]), torch.tensor([0.5, 0.5, 0.4])),
        "inverted": (torch.tensor([[3.0, 1.0], [1.0, 3.0], [2.0, 2.5]]), torch.tensor([0.9, 0.8, 0.7])),
        "negative_scores": (torch.tensor([[0.0, 2.0], [1.0, 3.0]]), torch.tensor([-0.5, -0.2])),
    }
    for segs, scores in cases.values():
        for method in (0, 1, 2):
            check_soft_nms(kernels, segs, scores, 0.3, 0.5, 0.001, method)
        check_nms(kernels, segs, scores, 0.3)


def test_all_below_min_score_keeps_the_first_selected(kernels):
    # ActionFormer never re-checks the selected candidate: with every score below
    # min_score exactly one survives (the maximum).
    segs = torch.tensor([[0.0, 1.0], [5.0, 6.0], [9.0, 10.0]])
    ids, sc = _composite.soft_nms_1d(segs, torch.tensor([1e-4, 3e-4, 2e-4]), 0.1, 0.5, 0.001, 2, kernels=kernels)
    assert ids.tolist() == [1]
    assert sc.tolist() == pytest.approx([3e-4])


def test_ties_follow_swap_order(kernels):
    # Tied scores: the first maximum in the *current* (swapped) array wins, so the
    # order is not simply the input order. Oracle value computed by hand:
    # select 0, its removal of slot 1 moves slot 4 there, which then wins the tie.
    segs = torch.tensor([[0.0, 10.0], [0.0, 10.0], [20.0, 30.0], [40.0, 50.0], [60.0, 70.0]])
    scores = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5])
    ids, _ = _composite.soft_nms_1d(segs, scores, 0.5, 0.5, 0.001, 0, kernels=kernels)
    assert ids.tolist() == [0, 4, 2, 3]
    assert oracle.soft_nms(segs.numpy(), scores.numpy(), 0.5, 0.5, 0.001, 0)[0] == [0, 4, 2, 3]


def test_nan_is_a_clear_error(kernels):
    segs = torch.tensor([[0.0, 1.0], [0.5, 2.0]])
    with pytest.raises(ValueError, match="NaN"):
        _composite.soft_nms_1d(segs, torch.tensor([0.5, float("nan")]), 0.1, 0.5, 0.0, 2, kernels=kernels)
    with pytest.raises(ValueError, match="NaN"):
        _composite.nms_1d(segs, torch.tensor([float("nan"), 0.5]), 0.1, kernels=kernels)
    with pytest.raises(ValueError, match="NaN"):
        _composite.nms_1d(
            torch.tensor([[0.0, float("nan")], [0.5, 2.0]]), torch.tensor([0.5, 0.5]), 0.1, kernels=kernels
        )


def test_large_input_matches_reference(need_ext):
    g = torch.Generator().manual_seed(3)
    n = 3000
    starts = torch.rand(n, generator=g) * 500
    segs = torch.stack([starts, starts + torch.rand(n, generator=g) * 40], 1)
    scores = torch.rand(n, generator=g)
    ext = _backend.nms_kernels("cpu-ext")
    keep = _composite.nms_1d(segs, scores, 0.4, kernels=ext)
    assert keep.tolist() == _composite.nms_1d(segs, scores, 0.4, kernels=_backend.nms_kernels("reference")).tolist()
    ids, sc = _composite.soft_nms_1d(segs, scores, 0.4, 0.5, 0.05, 1, kernels=ext)
    rids, rsc = _composite.soft_nms_1d(segs, scores, 0.4, 0.5, 0.05, 1, kernels=_backend.nms_kernels("reference"))
    assert ids.tolist() == rids.tolist()
    assert torch.equal(sc, rsc)


def test_grouped_soft_nms_matches_per_group_calls(kernels):
    g = torch.Generator().manual_seed(0)
    sizes = [0, 5, 1, 17, 0, 9]
    offsets = torch.tensor(np.cumsum([0, *sizes]), dtype=torch.int64)
    n = int(offsets[-1])
    segs = torch.sort(torch.rand(n, 2, generator=g) * 20, dim=1).values
    scores = torch.rand(n, generator=g)
    ids, sc, counts = kernels.soft_nms_grouped(segs, scores, offsets, 0.2, 0.5, 0.1, 2, 3)
    assert counts.tolist() == [
        min(3, len(oracle.soft_nms(segs[a:b].numpy(), scores[a:b].numpy(), 0.2, 0.5, 0.1, 2)[0]))
        for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
    ]
    expect = []
    for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True):
        expect += [a + k for k in oracle.soft_nms(segs[a:b].numpy(), scores[a:b].numpy(), 0.2, 0.5, 0.1, 2)[0][:3]]
    assert ids.tolist() == expect
    assert sc.shape == ids.shape


def test_seg_voting_backends_agree(need_ext):
    g = torch.Generator().manual_seed(1)
    segs = torch.sort(torch.rand(300, 2, generator=g) * 100, dim=1).values
    scores = torch.rand(300, generator=g)
    nms_segs = segs[::3].contiguous()
    ext = _backend.nms_kernels("cpu-ext").seg_voting(nms_segs, segs, scores, 0.5)
    ref = _reference.seg_voting(nms_segs, segs, scores, 0.5)
    exp = oracle.seg_voting(nms_segs.numpy(), segs.numpy(), scores.numpy(), 0.5)
    torch.testing.assert_close(ext, ref, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(ext, torch.tensor(exp, dtype=torch.float32), rtol=1e-6, atol=1e-5)


# ---------------------------------------------------------------- public API


def test_public_api_dispatch_and_noncontiguous():
    g = torch.Generator().manual_seed(2)
    segs = torch.sort(torch.rand(40, 2, generator=g) * 10, dim=1).values
    scores = torch.rand(40, generator=g)
    keep = ops.nms_1d(noncontiguous(segs), noncontiguous(scores), 0.3)
    assert keep.tolist() == oracle.nms(segs.numpy(), scores.numpy(), 0.3)
    ids, sc = ops.soft_nms_1d(noncontiguous(segs), noncontiguous(scores), 0.3, 0.5, 0.01, "linear")
    exp_ids, exp_sc = oracle.soft_nms(segs.numpy(), scores.numpy(), 0.3, 0.5, 0.01, 1)
    assert ids.tolist() == exp_ids
    assert torch.equal(sc, torch.tensor(np.asarray(exp_sc, dtype=np.float32)))


def test_public_api_validation():
    segs = torch.tensor([[0.0, 1.0]])
    with pytest.raises(ValueError, match="shape"):
        ops.nms_1d(torch.zeros(3), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="scores must have shape"):
        ops.soft_nms_1d(segs, torch.zeros(2))
    with pytest.raises(ValueError, match="method"):
        ops.soft_nms_1d(segs, torch.zeros(1), method="cubic")
    with pytest.raises(ValueError, match="sigma"):
        ops.soft_nms_1d(segs, torch.zeros(1), sigma=0.0)
    with pytest.raises(ValueError, match="NaN"):
        ops.soft_nms_1d(segs, torch.tensor([float("nan")]))


def test_gaussian_decay_is_bitwise_expf(need_ext):
    """Thousands of Gaussian weights: the C++ kernel must equal the oracle (C expf, as ActionFormer) bit for bit.

    An exp computed any other way (float64 then rounded, SIMD approximations) differs from expf in
    roughly 0.1-1% of the weights, which this input exposes.
    """
    segs, scores, _ = thumos_like(260, num_classes=1, seed=11, length=600.0)
    check_soft_nms(_backend.nms_kernels("cpu-ext"), segs, scores, 0.1, 0.5, 1e-4, 2)
