"""segment_iou / segment_iou_matched: C++ kernel and public op against the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import noncontiguous, segment_arrays
from hypothesis import given

import tal.cuda_ops as ops
from tal.cuda_ops import _backend
from tal.cuda_ops._reference import segment_iou as segment_iou_reference
from tal.cuda_ops._reference import segment_iou_matched as segment_iou_matched_reference


def segment_iou_ext(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _backend.bound_kernel("segment_iou", "cpu-ext")(a, b)


def segment_iou_matched_ext(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _backend.bound_kernel("segment_iou_matched", "cpu-ext")(a, b)


def test_reference_known_values():
    a = torch.tensor([[0.0, 2.0], [0.0, 4.0], [5.0, 5.0], [3.0, 1.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 3.0], [1.0, 2.0], [0.0, 2.0], [2.0, 3.0], [5.0, 5.0]])
    expect = torch.tensor(
        [
            [1 / 3, 1 / 2, 1.0, 0.0, 0.0],
            [2 / 4, 1 / 4, 2 / 4, 1 / 4, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],  # zero length
            [0.0, 0.0, 0.0, 0.0, 0.0],  # inverted
            [0.0, 0.0, 1 / 2, 0.0, 0.0],  # touching [2, 3] gives 0
        ]
    )
    torch.testing.assert_close(segment_iou_reference(a, b), expect)
    torch.testing.assert_close(segment_iou_matched_reference(a, b), expect.diagonal())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@given(a=segment_arrays(max_size=30), b=segment_arrays(max_size=30))
def test_ext_equals_reference_bitwise(need_ext, dtype, a, b):
    ta, tb = torch.tensor(a, dtype=dtype), torch.tensor(b, dtype=dtype)
    ref = segment_iou_reference(ta, tb)
    assert torch.equal(segment_iou_ext(ta, tb), ref)
    assert not torch.isnan(ref).any()
    assert ((ref >= 0) & (ref <= 1)).all()
    m = min(len(a), len(b))
    assert torch.equal(segment_iou_matched_ext(ta[:m], tb[:m]), segment_iou_matched_reference(ta[:m], tb[:m]))


@given(a=segment_arrays(min_size=1, max_size=20, inverted=False))
def test_properties(a):
    t = torch.tensor(a, dtype=torch.float32)
    iou = ops.segment_iou(t, t)
    torch.testing.assert_close(iou, iou.t())
    positive = (t[:, 1] - t[:, 0]) > 0
    assert torch.equal(iou.diagonal()[positive], torch.ones(int(positive.sum())))
    assert torch.equal(iou.diagonal()[~positive], torch.zeros(int((~positive).sum())))
    torch.testing.assert_close(
        ops.segment_iou_matched(t, t.flip(0)),
        iou.diagonal(offset=0).new_tensor([float(iou[i, len(a) - 1 - i]) for i in range(len(a))]),
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes_match_reference(dtype):
    g = torch.Generator().manual_seed(0)
    a = torch.sort(torch.rand(50, 2, generator=g) * 10, 1).values.to(dtype)
    b = torch.sort(torch.rand(40, 2, generator=g) * 10, 1).values.to(dtype)
    out = ops.segment_iou(a, b)
    assert out.dtype == dtype
    assert torch.equal(out, segment_iou_reference(a, b))
    assert torch.equal(ops.segment_iou_matched(a[:40], b), segment_iou_matched_reference(a[:40], b))


def test_mixed_and_integer_dtypes():
    a = torch.tensor([[0, 2], [1, 5]])
    b = torch.tensor([[1.0, 3.0]], dtype=torch.float64)
    assert ops.segment_iou(a, b).dtype == torch.float64
    assert ops.segment_iou(a, a).dtype == torch.float32
    torch.testing.assert_close(ops.segment_iou(a, a)[0, 1], torch.tensor(1 / 5))


def test_noncontiguous_and_empty():
    g = torch.Generator().manual_seed(1)
    a = torch.sort(torch.rand(30, 2, generator=g), 1).values
    b = torch.sort(torch.rand(20, 2, generator=g), 1).values
    assert torch.equal(ops.segment_iou(noncontiguous(a), noncontiguous(b)), segment_iou_reference(a, b))
    assert torch.equal(
        ops.segment_iou(a[::2], b[1::3]), segment_iou_reference(a[::2].contiguous(), b[1::3].contiguous())
    )
    assert ops.segment_iou(torch.zeros((0, 2)), b).shape == (0, 20)
    assert ops.segment_iou(a, torch.zeros((0, 2))).shape == (30, 0)
    assert ops.segment_iou_matched(torch.zeros((0, 2)), torch.zeros((0, 2))).shape == (0,)


def test_nan_propagates_consistently():
    a = torch.tensor([[0.0, float("nan")], [0.0, 1.0]])
    b = torch.tensor([[0.5, 2.0], [float("nan"), 1.0]])
    out = ops.segment_iou(a, b)
    assert torch.isnan(out[0]).all() and torch.isnan(out[:, 1]).all()
    assert out[1, 0] == pytest.approx(0.5 / 2.0)
    torch.testing.assert_close(out, segment_iou_reference(a, b), equal_nan=True)


def test_large_input_bitwise(need_ext):
    g = torch.Generator().manual_seed(2)
    s = torch.rand(3000, generator=g) * 1000
    a = torch.stack([s, s + torch.rand(3000, generator=g) * 50], 1)
    s = torch.rand(2500, generator=g) * 1000
    b = torch.stack([s, s + torch.rand(2500, generator=g) * 50 - 5], 1)
    assert torch.equal(segment_iou_ext(a, b), segment_iou_reference(a, b))


def test_validation():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        ops.segment_iou(torch.zeros(3, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="same number"):
        ops.segment_iou_matched(torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(TypeError):
        ops.segment_iou(np.zeros((2, 2)), torch.zeros(2, 2))
