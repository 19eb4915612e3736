"""TSTRefiner's forward equals the release's loop-and-dense-mask computation; decoding modes by hand."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import release_tst as oracle

from tal.seg_tst import TSTRefiner
from tal.seg_tst.modeling.segments import segments_of
from tal.seg_tst.modeling.tst import TSTOutput


def _inputs(t_len: int, n_classes: int, feat_dim: int, run: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, n_classes, (t_len // run + 1,)).repeat_interleave(run)[:t_len]
    preds = torch.nn.functional.one_hot(labels, n_classes).T.unsqueeze(0).float() + 0.01 * torch.rand(
        1, n_classes, t_len
    )
    return torch.randn(1, feat_dim, t_len), preds


@pytest.mark.parametrize(("t_len", "run"), [(1, 1), (7, 7), (60, 1), (90, 4)])
def test_forward_equals_the_release_computation(t_len: int, run: int) -> None:
    refiner = TSTRefiner(n_classes=5, feat_dim=12, inner_dim=8, sd_dim=16, n_layers=4).eval()
    feats, preds = _inputs(t_len, 5, 12, run)
    with torch.no_grad():
        out = refiner(feats, preds)
        cls, masks = oracle.refiner_forward_loop(refiner, feats, preds)
    assert out.segment_cls.shape == (2, 1, out.segments.num_segments, 6)
    torch.testing.assert_close(out.segment_cls, cls, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.segment_mask, masks, rtol=1e-4, atol=1e-4)
    assert out["segment_mask"].shape == (2, 1, out.segments.num_segments, t_len)
    assert out.action_idx.tolist() == preds[0].argmax(0).tolist()


def test_default_release_sizes_forward() -> None:
    refiner = TSTRefiner(n_classes=11, feat_dim=192, inner_dim=64).eval()
    feats, preds = _inputs(200, 11, 192, 5)
    with torch.no_grad():
        out = refiner(feats, preds)
        cls, _ = oracle.refiner_forward_loop(refiner, feats, preds)
    torch.testing.assert_close(out.segment_cls, cls, rtol=1e-4, atol=1e-4)


def test_decoding_modes_by_hand() -> None:
    seg = segments_of(torch.tensor([0, 0, 1, 1, 1, 2]))
    # last decoder: segment 0 → class 2, segment 1 → class 1 (its no-action logit is ignored), segment 2 → class 0
    cls = torch.zeros(2, 1, 3, 4)
    cls[1, 0, 0, 2] = 5
    cls[1, 0, 1, 1] = 1
    cls[1, 0, 1, 3] = 9
    cls[1, 0, 2, 0] = 3
    emb = torch.zeros(2, 1, 3, 2)
    emb[1, 0, :, 0] = torch.tensor([1.0, -1.0, -1.0])
    emb[1, 0, :, 1] = torch.tensor([-1.0, 1.0, 1.0])
    mf = torch.zeros(1, 2, 6)
    mf[0, 0, :3] = 10  # first half → segment 0's mask
    mf[0, 1, 3:] = 10
    out = TSTOutput(cls, emb, mf, torch.tensor([0, 0, 1, 1, 1, 2]), seg)
    assert out.hardmax_labels().tolist() == [2, 2, 1, 1, 1, 0]
    assert out.hardmax_labels().tolist() == oracle.hardmax_loop(cls, [0, 0, 1, 1, 1, 2]).tolist()
    soft = out.soft_labels().tolist()
    assert soft[:3] == [2, 2, 2]  # segment 0's mask covers frames 0-2
    hybrid = out.hybrid_labels(margin=1).tolist()
    # boundaries at 2 and 5: frames 1, 2 and 4, 5 take the backbone's labels
    assert hybrid == [2, 0, 1, 1, 1, 2]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40))
def test_hardmax_gives_back_the_classes_the_last_class_head_names(labels: list[int]) -> None:
    # Last decoder: each segment's own class scores 5, the no-action column (index n_classes) 100 and must
    # be ignored; the first decoder names another class and must be ignored too. Painting then returns
    # the input labels exactly (segment order, column order and decoder choice all checked at once).
    k = 5
    action_idx = torch.tensor(labels)
    seg = segments_of(action_idx)
    cls = torch.zeros(2, 1, seg.num_segments, k + 1)
    cls[1, 0] = 5 * torch.nn.functional.one_hot(seg.labels, k + 1).float()
    cls[1, 0, :, k] = 100
    cls[0, 0] = 50 * torch.nn.functional.one_hot((seg.labels + 1) % k, k + 1).float()
    out = TSTOutput(cls, torch.zeros(2, 1, seg.num_segments, 2), torch.zeros(1, 2, len(labels)), action_idx, seg)
    assert out.hardmax_labels().tolist() == labels


def test_gradients_reach_every_trainable_parameter() -> None:
    refiner = TSTRefiner(n_classes=4, feat_dim=6, inner_dim=4, sd_dim=8, n_layers=3).train()
    feats, preds = _inputs(30, 4, 6, 3)
    out = refiner(feats, preds)
    (out.segment_cls.pow(2).sum() + out.segment_mask.pow(2).mean()).backward()
    missing = [n for n, p in refiner.named_parameters() if p.grad is None]
    assert missing == []


def test_bad_inputs_are_clear_errors() -> None:
    refiner = TSTRefiner(n_classes=4, feat_dim=6, inner_dim=4, sd_dim=8, n_layers=3)
    with pytest.raises(ValueError, match="one video at a time"):
        refiner(torch.randn(2, 6, 10), torch.randn(2, 4, 10))
    with pytest.raises(ValueError, match="6"):
        refiner(torch.randn(1, 5, 10), torch.randn(1, 4, 10))
    with pytest.raises(ValueError, match="do not match"):
        refiner(torch.randn(1, 6, 10), torch.randn(1, 4, 9))
    with pytest.raises(ValueError, match="0 frames"):
        refiner(torch.randn(1, 6, 0), torch.randn(1, 4, 0))
    with pytest.raises(ValueError, match="n_layers"):
        TSTRefiner(n_classes=4, n_layers=2)
