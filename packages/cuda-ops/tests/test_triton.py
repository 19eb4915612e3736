"""Triton kernels against the references and the ActionFormer oracle.

Without a GPU they run on CPU tensors under Triton's interpreter
(TRITON_INTERPRET=1, set by conftest.py before any kernel is imported). Tests
marked ``cuda`` run the public ops on a real device and are skipped without one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

import pytest
import torch
from _checks import check_batched, check_nms, check_soft_nms
from _helpers import score_arrays, segment_arrays, thumos_like
from hypothesis import given, settings
from hypothesis import strategies as st

import tal.cuda_ops as ops
from tal.cuda_ops import _backend, _composite, _reference

HAVE_TRITON = importlib.util.find_spec("triton") is not None
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
interp = pytest.mark.skipif(
    not (HAVE_TRITON and INTERPRET), reason="needs triton and TRITON_INTERPRET=1 (conftest sets it without a GPU)"
)


@pytest.fixture(scope="module")
def tri():
    if not (HAVE_TRITON and INTERPRET):
        pytest.skip("Triton interpreter not active")
    return importlib.import_module("tal.cuda_ops._triton")


@pytest.fixture(scope="module")
def kernels(tri):
    """The Triton NMS primitives as the dispatch serves them (groups above MAX_GROUP go to the reference)."""
    return _backend.nms_kernels("triton")


# -------------------------------------------------------------------- IoU


@interp
@given(
    a=segment_arrays(max_size=40), b=segment_arrays(max_size=40), dtype=st.sampled_from([torch.float32, torch.float64])
)
def test_iou_matches_reference_bitwise(tri, a, b, dtype):
    ta, tb = torch.tensor(a, dtype=dtype), torch.tensor(b, dtype=dtype)
    assert torch.equal(tri.segment_iou(ta, tb), _reference.segment_iou(ta, tb))
    m = min(len(a), len(b))
    assert torch.equal(tri.segment_iou_matched(ta[:m], tb[:m]), _reference.segment_iou_matched(ta[:m], tb[:m]))


@interp
def test_iou_edge_cases(tri):
    a = torch.tensor([[0.0, float("nan")], [0.0, 1.0], [3.0, 3.0], [5.0, 2.0]])
    b = torch.tensor([[0.5, 2.0], [float("nan"), 1.0], [3.0, 3.0]])
    torch.testing.assert_close(tri.segment_iou(a, b), _reference.segment_iou(a, b), equal_nan=True)
    assert tri.segment_iou(torch.zeros((0, 2)), b).shape == (0, 3)
    g = torch.Generator().manual_seed(0)
    big_a = torch.sort(torch.rand(300, 2, generator=g) * 50, 1).values
    big_b = torch.sort(torch.rand(200, 2, generator=g) * 50, 1).values
    assert torch.equal(tri.segment_iou(big_a, big_b), _reference.segment_iou(big_a, big_b))


# -------------------------------------------------------------------- NMS


@st.composite
def small_case(draw, max_size=16):
    segs = draw(segment_arrays(max_size=max_size))
    return segs, draw(score_arrays(len(segs)))


@interp
@settings(max_examples=15)
@given(
    case=small_case(),
    thr=st.sampled_from([0.1, 0.5, 1.0]),
    low=st.sampled_from([0.0, 0.2]),
    method=st.sampled_from([0, 1, 2]),
)
def test_soft_nms_matches_oracle(kernels, case, thr, low, method):
    segs, scores = case
    check_soft_nms(
        kernels,
        torch.tensor(segs, dtype=torch.float32),
        torch.tensor(scores, dtype=torch.float32),
        thr,
        0.5,
        low,
        method,
    )


@interp
@settings(max_examples=15)
@given(case=small_case(), thr=st.sampled_from([0.1, 0.5, 1.0]))
def test_nms_matches_oracle(kernels, case, thr):
    segs, scores = case
    check_nms(kernels, torch.tensor(segs, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32), thr)


@interp
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_nms_dtypes(kernels, dtype):
    g = torch.Generator().manual_seed(5)
    segs = torch.sort(torch.rand(20, 2, generator=g) * 10, 1).values.to(dtype)
    scores = torch.rand(20, generator=g).to(dtype)
    for method in (0, 1, 2):
        check_soft_nms(kernels, segs, scores, 0.3, 0.5, 0.05, method)
    check_nms(kernels, segs, scores, 0.3)


@interp
def test_nms_adversarial(kernels):
    cases = [
        (torch.zeros((0, 2)), torch.zeros(0)),
        (torch.tensor([[1.0, 3.0]]), torch.tensor([0.5])),
        (torch.tensor([[1.0, 3.0]] * 6), torch.full((6,), 0.5)),
        (torch.tensor([[0.0, 10.0], [0.0, 10.0], [20.0, 30.0], [40.0, 50.0], [60.0, 70.0]]), torch.full((5,), 0.5)),
        (torch.tensor([[0.0, 1.0], [0.5, 1.5], [3.0, 4.0]]), torch.tensor([1e-4, 2e-4, 1e-5])),
        (torch.tensor([[1.0, 1.0], [3.0, 1.0], [0.0, 2.0]]), torch.tensor([0.5, 0.5, 0.4])),
    ]
    for segs, scores in cases:
        for method in (0, 1, 2):
            check_soft_nms(kernels, segs, scores, 0.5, 0.5, 0.001, method)
        check_nms(kernels, segs, scores, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        _composite.soft_nms_1d(
            torch.tensor([[0.0, 1.0]]), torch.tensor([float("nan")]), 0.1, 0.5, 0.0, 2, kernels=kernels
        )


@interp
@settings(max_examples=10)
@given(
    segs=segment_arrays(max_size=24, inverted=False),
    data=st.data(),
    multiclass=st.booleans(),
    soft=st.booleans(),
    max_seg_num=st.sampled_from([0, 2, 100]),
)
def test_batched_matches_oracle(kernels, segs, data, multiclass, soft, max_seg_num):
    scores = data.draw(score_arrays(len(segs)))
    labels = data.draw(st.lists(st.integers(0, 2), min_size=len(segs), max_size=len(segs)))
    check_batched(
        kernels,
        torch.tensor(segs, dtype=torch.float32),
        torch.tensor(scores, dtype=torch.float32),
        torch.tensor(labels, dtype=torch.int64),
        multiclass=multiclass,
        use_soft_nms=soft,
        max_seg_num=max_seg_num,
        voting_thresh=0.6,
    )


@interp
def test_batched_thumos_like(kernels):
    segs, scores, labels = thumos_like(160, num_classes=6, seed=2)
    for multiclass in (True, False):
        check_batched(kernels, segs, scores, labels, multiclass=multiclass, max_seg_num=100)


@interp
def test_seg_voting_matches_reference(tri):
    g = torch.Generator().manual_seed(3)
    segs = torch.sort(torch.rand(150, 2, generator=g) * 40, 1).values
    scores = torch.rand(150, generator=g)
    nms_segs = torch.cat([segs[:40], torch.tensor([[7.0, 7.0]])])
    torch.testing.assert_close(
        tri.seg_voting(nms_segs, segs, scores, 0.5), _reference.seg_voting(nms_segs, segs, scores, 0.5)
    )


@interp
def test_groups_above_the_register_limit_use_the_reference(tri, kernels, monkeypatch):
    monkeypatch.setattr(importlib.import_module("tal.cuda_ops._triton.nms"), "MAX_GROUP", 8)
    g = torch.Generator().manual_seed(4)
    segs = torch.sort(torch.rand(30, 2, generator=g) * 10, 1).values
    scores = torch.rand(30, generator=g)
    big, small = torch.tensor([0, 30]), torch.tensor([0, 8, 16, 24, 30])
    with pytest.raises(ValueError, match="exceeds"):  # the kernel itself refuses a group it cannot hold
        tri.soft_nms_grouped(segs, scores, big, 0.3, 0.5, 0.01, 2, 0)
    for offsets in (big, small):  # the dispatch sends the big group to the reference, the small ones to Triton
        got = kernels.soft_nms_grouped(segs, scores, offsets, 0.3, 0.5, 0.01, 2, 0)
        want = _reference.soft_nms_grouped(segs, scores, offsets, 0.3, 0.5, 0.01, 2, 0)
        for x, y in zip(got, want, strict=True):
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)
    order = torch.argsort(scores, descending=True)
    with pytest.raises(ValueError, match="exceeds"):
        tri.hard_nms_grouped(segs, order, big, 0.3)
    want_keep = _reference.hard_nms_grouped(segs, order, big, 0.3)
    assert torch.equal(kernels.hard_nms_grouped(segs, order, big, 0.3), want_keep)


# ------------------------------------------------------------------ graph


GRAPH_TOL = {
    torch.float32: dict(rtol=1e-5, atol=1e-4),
    torch.float64: dict(rtol=1e-12, atol=1e-11),
    torch.float16: dict(rtol=2e-3, atol=2e-2),
    torch.bfloat16: dict(rtol=1.6e-2, atol=1e-1),
}


@interp
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("sum_k", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 4, 20, 25), (1, 1, 2, 33, 7), (2, 2, 3, 5, 40)])
def test_graph_matches_reference(tri, dtype, sum_k, shape):
    n, k, c, t, v = shape
    g = torch.Generator().manual_seed(6)
    x = torch.randn(n, k, c, t, v, generator=g).to(dtype)
    a = torch.randn(n, k, c, v, v, generator=g).to(dtype)
    tol = GRAPH_TOL[dtype]
    torch.testing.assert_close(tri.graph_refined_fwd(x, a, sum_k), _reference.graph_refined_fwd(x, a, sum_k), **tol)
    grad = torch.randn((n, c, t, v) if sum_k else (n, k, c, t, v), generator=g).to(dtype)
    for got, want in zip(
        tri.graph_refined_bwd(grad, x, a, sum_k, True, True),
        _reference.graph_refined_bwd(grad, x, a, sum_k, True, True),
        strict=True,
    ):
        torch.testing.assert_close(got, want, **tol)
    xs = x[:, 0].contiguous()
    adj = torch.randn(k, v, v, generator=g).to(dtype)
    torch.testing.assert_close(tri.graph_shared_fwd(xs, adj, sum_k), _reference.graph_shared_fwd(xs, adj, sum_k), **tol)
    gs = torch.randn((n, c, t, v) if sum_k else (n, k, c, t, v), generator=g).to(dtype)
    for got, want in zip(
        tri.graph_shared_bwd(gs, xs, adj, sum_k, True, True),
        _reference.graph_shared_bwd(gs, xs, adj, sum_k, True, True),
        strict=True,
    ):
        torch.testing.assert_close(got, want, **tol)


# ----------------------------------------------------- real GPU (skipped here)


@pytest.mark.cuda
def test_cuda_ops_match_cpu():
    info = ops.backend_info()
    assert info["segment_iou"]["cuda"].impl == ("triton" if HAVE_TRITON else "reference")
    segs, scores, labels = thumos_like(2000, seed=1)
    dev = torch.device("cuda")
    torch.testing.assert_close(ops.segment_iou(segs.to(dev), segs.to(dev)).cpu(), _reference.segment_iou(segs, segs))
    out = ops.batched_nms(segs.to(dev), scores.to(dev), labels.to(dev), 0.1, 0.001, 200, True, True, 0.5, 0.7)
    ref = ops.batched_nms(segs, scores, labels, 0.1, 0.001, 200, True, True, 0.5, 0.7)
    assert out[2].cpu().tolist() == ref[2].tolist()
    torch.testing.assert_close(out[1].cpu(), ref[1], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(out[0].cpu(), ref[0])
    x = torch.randn(4, 3, 64, 32, 25, device=dev, requires_grad=True)
    a = torch.randn(4, 3, 64, 25, 25, device=dev, requires_grad=True)
    ops.graph_aggregate(x, a, sum_subsets=True).sum().backward()
    gx, gA = _reference.graph_refined_bwd(
        torch.ones(4, 64, 32, 25), x.detach().cpu(), a.detach().cpu(), True, True, True
    )
    torch.testing.assert_close(x.grad.cpu(), gx, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(a.grad.cpu(), gA, rtol=1e-4, atol=1e-3)
