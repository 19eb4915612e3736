"""Comparisons of a backend's grouped NMS primitives against the oracle (shared by CPU and Triton tests)."""

from __future__ import annotations

from typing import Any

import _af_oracle as oracle
import numpy as np
import torch

from tal.cuda_ops import _composite

# Backends whose exponential is the C library's expf agree bit for bit with the
# oracle; the others compute exp in float64 and round, which can differ by one
# float32 ulp (~0.1% of weights), so their scores get a tolerance.
BITWISE = {"cpu-ext"}


def _ftype(dtype: torch.dtype):
    return np.float64 if dtype == torch.float64 else np.float32


def _cdt(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_soft_nms(kernels: Any, segs: torch.Tensor, scores: torch.Tensor, thr, sigma, min_score, method) -> None:
    ids, sc = _composite.soft_nms_1d(segs, scores, thr, sigma, min_score, method, kernels=kernels)
    cdt = _cdt(torch.promote_types(segs.dtype, scores.dtype))
    exp_ids, exp_sc = oracle.soft_nms(
        segs.to(cdt).cpu().numpy(), scores.to(cdt).cpu().numpy(), thr, sigma, min_score, method, _ftype(cdt)
    )
    assert ids.tolist() == exp_ids
    assert sc.dtype == scores.dtype
    expect = torch.tensor(np.asarray(exp_sc, dtype=_ftype(cdt)), dtype=cdt).to(scores.dtype)
    if kernels.name in BITWISE or method != 2:
        assert torch.equal(sc.cpu(), expect), (sc, expect)
    else:
        torch.testing.assert_close(sc.cpu(), expect, rtol=1e-6, atol=1e-7)


def check_nms(kernels: Any, segs: torch.Tensor, scores: torch.Tensor, thr) -> None:
    keep = _composite.nms_1d(segs, scores, thr, kernels=kernels)
    cdt = _cdt(torch.promote_types(segs.dtype, scores.dtype))
    expect = oracle.nms(segs.to(cdt).cpu().numpy(), scores.to(cdt).cpu().numpy(), thr, _ftype(cdt))
    assert keep.tolist() == expect


def check_batched(kernels: Any, segs, scores, labels, **kw) -> None:
    defaults = dict(
        iou_threshold=0.1,
        min_score=0.001,
        max_seg_num=200,
        use_soft_nms=True,
        multiclass=True,
        sigma=0.5,
        voting_thresh=0.7,
        method=2,
    )
    defaults.update(kw)
    out_segs, out_sc, out_lab = _composite.batched_nms(segs, scores, labels, kernels=kernels, **defaults)
    cdt = _cdt(torch.promote_types(segs.dtype, scores.dtype))
    e_segs, e_sc, e_lab = oracle.batched_nms(segs.to(cdt).cpu(), scores.to(cdt).cpu(), labels.cpu(), **defaults)
    assert out_segs.dtype == segs.dtype and out_sc.dtype == scores.dtype and out_lab.dtype == labels.dtype
    assert out_lab.cpu().tolist() == [int(v) for v in e_lab]
    expect_sc = torch.tensor(e_sc, dtype=cdt).to(scores.dtype)
    if kernels.name in BITWISE or not defaults["use_soft_nms"] or defaults["method"] != 2:
        assert torch.equal(out_sc.cpu(), expect_sc)
    else:
        torch.testing.assert_close(out_sc.cpu(), expect_sc, rtol=1e-6, atol=1e-7)
    expect_segs = torch.tensor(e_segs, dtype=cdt).to(segs.dtype)
    voting = not defaults["multiclass"] and defaults["voting_thresh"] > 0
    if voting:
        tol = 1e-5 if segs.dtype in (torch.float32, torch.float64) else 1e-2
        torch.testing.assert_close(out_segs.cpu(), expect_segs, rtol=tol, atol=tol)
    else:
        assert torch.equal(out_segs.cpu(), expect_segs)
