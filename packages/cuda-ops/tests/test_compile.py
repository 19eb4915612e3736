"""torch.library.opcheck for every op and torch.compile(fullgraph=True) through them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import tal.cuda_ops as ops


def _inputs(device: str = "cpu"):
    g = torch.Generator().manual_seed(0)
    segs = torch.sort(torch.rand(40, 2, generator=g) * 20, 1).values
    scores = torch.rand(40, generator=g)
    labels = torch.randint(0, 4, (40,), generator=g)
    return segs.to(device), scores.to(device), labels.to(device)


def _op_cases(device: str = "cpu"):
    segs, scores, labels = _inputs(device)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 5, 7, generator=g).to(device)
    a = torch.randn(2, 3, 4, 7, 7, generator=g).to(device)
    xs = torch.randn(2, 4, 5, 7, generator=g).to(device)
    adj = torch.randn(3, 7, 7, generator=g).to(device)
    t = torch.ops.tal_ops
    return [
        (t.segment_iou, (segs, segs[:17])),
        (t.segment_iou_matched, (segs, segs.flip(0))),
        (t.nms_1d, (segs, scores, 0.3)),
        (t.soft_nms_1d, (segs, scores, 0.3, 0.5, 0.01, 2)),
        (t.soft_nms_1d, (segs, scores, 0.3, 0.5, 0.01, 1)),
        (t.batched_nms, (segs, scores, labels, 0.1, 0.001, 30, True, True, 0.5, 0.7, 2)),
        (t.batched_nms, (segs, scores, labels, 0.1, 0.001, 30, True, False, 0.5, 0.7, 2)),
        (t.batched_nms, (segs, scores, labels, 0.3, 0.001, 30, False, True, 0.5, 0.0, 2)),
        (t.graph_aggregate_refined, (x.requires_grad_(), a.requires_grad_(), True)),
        (t.graph_aggregate_refined, (x, a, False)),
        (t.graph_aggregate_shared, (xs.requires_grad_(), adj.requires_grad_(), False)),
        (t.graph_aggregate_shared, (xs, adj, True)),
        (
            t.graph_aggregate_refined_backward,
            (torch.randn(2, 4, 5, 7).to(device), x.detach(), a.detach(), True, True, True),
        ),
        (
            t.graph_aggregate_shared_backward,
            (torch.randn(2, 3, 4, 5, 7).to(device), xs.detach(), adj.detach(), False, True, False),
        ),
    ]


@pytest.mark.parametrize("case", range(len(_op_cases())))
def test_opcheck_cpu(case):
    op, args = _op_cases()[case]
    result = torch.library.opcheck(op, args)
    assert all(v == "SUCCESS" for v in result.values()), result


@pytest.mark.cuda
@pytest.mark.parametrize("case", range(len(_op_cases())))
def test_opcheck_cuda(case):
    op, args = _op_cases("cuda")[case]
    result = torch.library.opcheck(op, args)
    assert all(v == "SUCCESS" for v in result.values()), result


def _postprocess(segs, scores, labels, x, a):
    iou = ops.segment_iou(segs, segs)
    keep = ops.nms_1d(segs, scores, 0.5)
    _soft_idx, soft_scores = ops.soft_nms_1d(segs, scores)
    out_segs, out_scores, out_labels = ops.batched_nms(segs, scores, labels, 0.1, 0.001, 25, True, False, 0.5, 0.7)
    feat = ops.graph_aggregate(x, a).relu().sum()
    return iou.sum() + keep.numel() + soft_scores.sum() + out_segs.sum() + out_scores.sum() + out_labels.sum() + feat


def test_torch_compile_fullgraph_matches_eager():
    segs, scores, labels = _inputs()
    x = torch.randn(2, 4, 5, 7)
    a = torch.randn(2, 4, 7, 7)
    torch._dynamo.reset()
    compiled = torch.compile(_postprocess, fullgraph=True)
    torch.testing.assert_close(compiled(segs, scores, labels, x, a), _postprocess(segs, scores, labels, x, a))


def test_torch_compile_backward_through_graph_aggregate():
    x = torch.randn(2, 3, 4, 5, 7, requires_grad=True)
    a = torch.randn(2, 3, 4, 7, 7, requires_grad=True)
    torch._dynamo.reset()
    fn = torch.compile(lambda x, a: ops.graph_aggregate(x, a, sum_subsets=True).square().sum(), fullgraph=True)
    fn(x, a).backward()
    gx, ga = x.grad.clone(), a.grad.clone()
    x.grad = a.grad = None
    ops.graph_aggregate(x, a, sum_subsets=True).square().sum().backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(ga, a.grad)


@pytest.mark.parametrize("case", [8, 9, 10, 11, 12, 13])
def test_opcheck_cpu_graph_with_cpp_kernel(case, monkeypatch, need_ext):
    from tal.cuda_ops import _backend

    monkeypatch.setattr(_backend, "GRAPH_CPU_EXT", True)
    op, args = _op_cases()[case]
    result = torch.library.opcheck(op, args)
    assert all(v == "SUCCESS" for v in result.values()), result


def _public_calls():
    segs, scores, labels = _inputs()
    g = torch.Generator().manual_seed(2)
    xs, adj = torch.randn(2, 4, 5, 7, generator=g), torch.randn(3, 7, 7, generator=g)
    x, a = torch.randn(2, 4, 5, 7, generator=g), torch.randn(2, 4, 7, 7, generator=g)
    return [
        (ops.segment_iou, (segs, segs[:9]), {}),
        (ops.segment_iou_matched, (segs, segs.flip(0)), {}),
        (ops.nms_1d, (segs, scores, 0.3), {}),
        (ops.soft_nms_1d, (segs, scores, 0.3, 0.5, 0.01, "linear"), {}),
        (ops.batched_nms, (segs, scores, labels, 0.1, 0.001, 30, True, True, 0.5, 0.7), {}),
        (ops.graph_aggregate, (xs, adj), {"sum_subsets": True}),
        (ops.graph_aggregate, (x, a), {}),
    ]


class _CountingMode(torch.overrides.TorchFunctionMode):
    """A __torch_function__ mode: while it is active every public op must go through torch.ops."""

    def __init__(self) -> None:
        super().__init__()
        self.tal_calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if "tal_ops." in str(func):
            self.tal_calls += 1
        return func(*args, **(kwargs or {}))


def test_plain_eager_calls_equal_dispatcher_calls():
    for fn, args, kwargs in _public_calls():
        direct = fn(*args, **kwargs)
        with _CountingMode() as mode:
            dispatched = fn(*args, **kwargs)
        assert mode.tal_calls >= 1, fn.__name__  # the mode forced the torch.ops path
        for d, o in zip(
            direct if isinstance(direct, tuple) else (direct,),
            dispatched if isinstance(dispatched, tuple) else (dispatched,),
            strict=True,
        ):
            torch.testing.assert_close(d, o, rtol=0, atol=0, msg=fn.__name__)


def test_plain_eager_predicate():
    from tal.cuda_ops._ops import plain_eager

    t = torch.ones(3, requires_grad=True)
    assert plain_eager(t) and plain_eager(t.detach(), differentiable=True)
    assert not plain_eager(t, differentiable=True)
    with torch.no_grad():
        assert plain_eager(t, differentiable=True)
    with _CountingMode():
        assert not plain_eager(t.detach())
    assert not plain_eager(torch.nn.Parameter(torch.ones(2)))  # a subclass goes through torch.ops


def test_eager_inference_does_not_import_dynamo():
    """A custom op's first call imports torch._dynamo (~1 s, ~150 MB); the eager path must not."""
    code = textwrap.dedent(
        """
        import sys
        import torch
        import tal.cuda_ops as ops
        segs = torch.sort(torch.rand(50, 2), 1).values
        scores, labels = torch.rand(50), torch.randint(0, 3, (50,))
        ops.batched_nms(segs, scores, labels, 0.1, 0.001, 20, True, True, 0.5, 0.7)
        ops.segment_iou(segs, segs)
        ops.nms_1d(segs, scores, 0.5)
        with torch.no_grad():
            ops.graph_aggregate(torch.randn(1, 2, 3, 5), torch.randn(2, 5, 5))
        print("torch._dynamo" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
