"""torch.library.opcheck for every op and torch.compile(fullgraph=True) through them."""

from __future__ import annotations

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
