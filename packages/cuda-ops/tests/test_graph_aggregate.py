"""graph_aggregate: C++ kernels and the public op (with autograd) vs the reference, and the reference vs einsum."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tal.cuda_ops as ops
from tal.cuda_ops import _backend, _reference

TOL = {
    torch.float32: dict(rtol=1e-5, atol=1e-4),
    torch.float64: dict(rtol=1e-12, atol=1e-11),
    torch.float16: dict(rtol=2e-3, atol=2e-2),
    torch.bfloat16: dict(rtol=1.6e-2, atol=1e-1),
}


def _close(actual, expected, dtype):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, **TOL[dtype])


def _refined_inputs(n, k, c, t, v, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, c, t, v, generator=g, dtype=torch.float64).to(dtype)
    a = torch.randn(n, k, c, v, v, generator=g, dtype=torch.float64).to(dtype)
    return x, a, g


shapes = st.tuples(
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 40),
    st.sampled_from([1, 3, 7, 16, 25, 33, 70]),
)


@given(shape=shapes, sum_k=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_ext_refined_matches_reference(need_ext, shape, sum_k, dtype):
    n, k, c, t, v = shape
    x, a, g = _refined_inputs(n, k, c, t, v, dtype)
    ext = torch.ops.tal_ops_ext
    _close(ext.graph_refined_fwd(x, a, sum_k), _reference.graph_refined_fwd(x, a, sum_k), dtype)
    grad = torch.randn((n, c, t, v) if sum_k else (n, k, c, t, v), generator=g, dtype=torch.float64).to(dtype)
    for got, want in zip(
        ext.graph_refined_bwd(grad, x, a, sum_k, True, True),
        _reference.graph_refined_bwd(grad, x, a, sum_k, True, True),
        strict=True,
    ):
        _close(got, want, dtype)
    gx, gA = ext.graph_refined_bwd(grad, x, a, sum_k, False, True)
    assert gx.numel() == 0 and gA.shape == a.shape


@given(shape=shapes, sum_k=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_ext_shared_matches_reference(need_ext, shape, sum_k, dtype):
    n, k, c, t, v = shape
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, c, t, v, generator=g, dtype=torch.float64).to(dtype)
    a = torch.randn(k, v, v, generator=g, dtype=torch.float64).to(dtype)
    ext = torch.ops.tal_ops_ext
    _close(ext.graph_shared_fwd(x, a, sum_k), _reference.graph_shared_fwd(x, a, sum_k), dtype)
    grad = torch.randn((n, c, t, v) if sum_k else (n, k, c, t, v), generator=g, dtype=torch.float64).to(dtype)
    for got, want in zip(
        ext.graph_shared_bwd(grad, x, a, sum_k, True, True),
        _reference.graph_shared_bwd(grad, x, a, sum_k, True, True),
        strict=True,
    ):
        _close(got, want, dtype)


@given(shape=shapes, sum_k=st.booleans())
def test_reference_matches_einsum(shape, sum_k):
    n, k, c, t, v = shape
    x, a, g = _refined_inputs(n, k, c, t, v, torch.float64)
    eq = "nkcuv,nkctv->nctu" if sum_k else "nkcuv,nkctv->nkctu"
    xr, ar = x.clone().requires_grad_(), a.clone().requires_grad_()
    want = torch.einsum(eq, ar, xr)
    grad = torch.randn(want.shape, generator=g, dtype=torch.float64)
    want.backward(grad)
    _close(_reference.graph_refined_fwd(x, a, sum_k), want.detach(), torch.float64)
    gx, gA = _reference.graph_refined_bwd(grad, x, a, sum_k, True, True)
    _close(gx, xr.grad, torch.float64)
    _close(gA, ar.grad, torch.float64)
    xs = x[:, 0].contiguous().requires_grad_()
    adj = torch.randn(k, v, v, generator=g, dtype=torch.float64, requires_grad=True)
    want = torch.einsum("kuv,nctv->nctu" if sum_k else "kuv,nctv->nkctu", adj, xs)
    grad = torch.randn(want.shape, generator=g, dtype=torch.float64)
    want.backward(grad)
    _close(_reference.graph_shared_fwd(xs.detach(), adj.detach(), sum_k), want.detach(), torch.float64)
    gx, gA = _reference.graph_shared_bwd(grad, xs.detach(), adj.detach(), sum_k, True, True)
    _close(gx, xs.grad, torch.float64)
    _close(gA, adj.grad, torch.float64)


def test_reference_is_the_ctrgcn_formula():
    x, a, _ = _refined_inputs(2, 1, 3, 5, 4, torch.float64)
    out = ops.graph_aggregate(x[:, 0], a[:, 0])
    manual = torch.zeros(2, 3, 5, 4, dtype=torch.float64)
    for n in range(2):
        for c in range(3):
            for t in range(5):
                for u in range(4):
                    manual[n, c, t, u] = sum(a[n, 0, c, u, v] * x[n, 0, c, t, v] for v in range(4))
    torch.testing.assert_close(out, manual)
    adj = torch.randn(3, 4, 4, dtype=torch.float64)
    shared = ops.graph_aggregate(x[:, 0], adj)
    assert shared.shape == (2, 3, 3, 5, 4)
    torch.testing.assert_close(shared[1, 2, 0, 4], adj[2] @ x[1, 0, 0, 4])
    torch.testing.assert_close(ops.graph_aggregate(x[:, 0], adj, sum_subsets=True), shared.sum(1))


@pytest.fixture(params=["default", "cpu-ext"])
def dispatch(request, monkeypatch, ext_loaded):
    if request.param == "cpu-ext":
        if not ext_loaded:
            pytest.skip("compiled kernels not loaded")
        monkeypatch.setattr(_backend, "GRAPH_CPU_EXT", True)
        assert ops.backend_info()["graph_aggregate"]["cpu"].impl == "cpu-ext"
    else:
        assert ops.backend_info()["graph_aggregate"]["cpu"].impl == "reference"
    return request.param


@pytest.mark.parametrize("variant", ["refined4", "refined5", "refined5sum", "shared", "sharedsum"])
def test_gradcheck_public_op(dispatch, variant):
    g = torch.Generator().manual_seed(3)
    k, v = 2, 5
    if variant == "refined4":
        x = torch.randn(2, 3, 4, v, generator=g, dtype=torch.float64)
        a = torch.randn(2, 3, v, v, generator=g, dtype=torch.float64)
        fn = lambda x, a: ops.graph_aggregate(x, a)  # noqa: E731
    elif variant.startswith("refined5"):
        x = torch.randn(2, k, 3, 4, v, generator=g, dtype=torch.float64)
        a = torch.randn(2, k, 3, v, v, generator=g, dtype=torch.float64)
        s = variant.endswith("sum")
        fn = lambda x, a: ops.graph_aggregate(x, a, sum_subsets=s)  # noqa: E731
    else:
        x = torch.randn(2, 3, 4, v, generator=g, dtype=torch.float64)
        a = torch.randn(k, v, v, generator=g, dtype=torch.float64)
        s = variant.endswith("sum")
        fn = lambda x, a: ops.graph_aggregate(x, a, sum_subsets=s)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x.requires_grad_(), a.requires_grad_()))
    # gradient for one input only
    x.grad = None
    fn(x, a.detach()).sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_public_op_dtypes_and_noncontiguous(dispatch, dtype):
    x, a, _g = _refined_inputs(2, 3, 8, 12, 25, torch.float32, seed=4)
    xd, ad = x.to(dtype), a.to(dtype)
    xd_nc = xd.transpose(3, 4).contiguous().transpose(3, 4)  # same values, not contiguous
    assert not xd_nc.is_contiguous()
    out = ops.graph_aggregate(xd_nc, ad, sum_subsets=True)
    want = _reference.graph_refined_fwd(xd.float(), ad.float(), True).to(dtype)
    _close(out, want, dtype)
    xr = xd_nc.detach().requires_grad_()
    ar = ad.detach().requires_grad_()
    ops.graph_aggregate(xr, ar, sum_subsets=True).float().sum().backward()
    gx, gA = _reference.graph_refined_bwd(torch.ones(2, 8, 12, 25), xd.float(), ad.float(), True, True, True)
    assert xr.grad.dtype == dtype
    _close(xr.grad, gx.to(dtype), dtype)
    _close(ar.grad, gA.to(dtype), dtype)


def test_empty_batch(dispatch):
    x = torch.zeros(0, 3, 4, 25, requires_grad=True)
    a = torch.zeros(0, 3, 25, 25, requires_grad=True)
    out = ops.graph_aggregate(x, a)
    assert out.shape == (0, 3, 4, 25)
    out.sum().backward()
    assert x.grad.shape == x.shape


def test_validation():
    x = torch.zeros(2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"\(K, 5, 5\)"):
        ops.graph_aggregate(x, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="must be"):
        ops.graph_aggregate(x, torch.zeros(2, 3, 5, 4))
    with pytest.raises(TypeError, match="same dtype"):
        ops.graph_aggregate(x, torch.zeros(2, 5, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must be"):
        ops.graph_aggregate(x, torch.zeros(2, 1, 3, 5, 5))


def _grads(fn, x0, a0):
    """Gradients of ``fn(x, A)`` for a fixed non-uniform output gradient, and whether the custom op ran."""
    xx, aa = x0.clone().requires_grad_(), a0.clone().requires_grad_()
    out = fn(xx, aa)
    via_op = "tal_ops" in type(out.grad_fn).__name__
    out.backward(torch.ones_like(out) + out.detach())
    return xx.grad, aa.grad, via_op


@pytest.mark.parametrize("sum_k", [False, True])
@pytest.mark.parametrize("variant", ["refined", "shared"])
def test_eager_autograd_through_the_reference_matches_the_registered_backward(dispatch, variant, sum_k):
    """On CPU with the reference kernel, plain eager training skips the custom op (torch's autograd
    runs through the reference); its gradients must equal the op's registered backward."""
    x, a, g = _refined_inputs(2, 3, 4, 6, 5, torch.float64, seed=7)
    op = torch.ops.tal_ops.graph_aggregate_refined
    if variant == "shared":
        x = torch.randn(2, 4, 6, 5, generator=g, dtype=torch.float64)
        a = torch.randn(3, 5, 5, generator=g, dtype=torch.float64)
        op = torch.ops.tal_ops.graph_aggregate_shared
    gx, ga_, public_via_op = _grads(lambda x_, a_: ops.graph_aggregate(x_, a_, sum_subsets=sum_k), x, a)
    ox, oa, op_via_op = _grads(lambda x_, a_: op(x_, a_, sum_k), x, a)
    assert op_via_op and public_via_op == (dispatch == "cpu-ext")  # the C++ kernel needs the registered backward
    torch.testing.assert_close(gx, ox, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ga_, oa, rtol=1e-12, atol=1e-12)
