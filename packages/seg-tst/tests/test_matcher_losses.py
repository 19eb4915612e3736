"""Hungarian matching on toy cases and against the release's loop; CE / focal / dice against hand values."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import release_tst as oracle

from tal.seg_tst.modeling.losses import dice_loss, segment_class_loss, sigmoid_focal_loss, tst_loss
from tal.seg_tst.modeling.matcher import match_segments, overlap_scores
from tal.seg_tst.modeling.segments import segments_of
from tal.seg_tst.modeling.tst import TSTOutput


def test_matching_toy_case_by_hand() -> None:
    # prediction: [0,4) [4,6) [6,10); truth: [0,5) [5,10)
    pred = segments_of(torch.tensor([0] * 4 + [1] * 2 + [0] * 4))
    gt = segments_of(torch.tensor([0] * 5 + [2] * 5))
    scores = overlap_scores(pred, gt)
    # pred 0 (0..3) vs gt 0 (0..4): gt contains pred (ps <= gs? 0<=0 and ge<=pe? 4<=3 no; gs<ps? no) → else: 4/(4-0)
    assert scores[0, 0].item() == pytest.approx(4 / 4)
    assert scores[0, 1].item() == 0
    # pred 1 (4..5) vs gt 0 (0..4): overlap 1, gt starts first → 1 / (5 - 0)
    assert scores[1, 0].item() == pytest.approx(1 / 5)
    # pred 1 vs gt 1 (5..9): overlap 1, else branch → 1 / (9 - 4)
    assert scores[1, 1].item() == pytest.approx(1 / 5)
    # pred 2 (6..9) vs gt 1 (5..9): gt starts first (not strictly containing: pe == ge) → 4 / (9 - 5)
    assert scores[2, 1].item() == pytest.approx(4 / 4)
    rows, cols = match_segments(pred, gt)
    assert rows.tolist() == [0, 2] and cols.tolist() == [0, 1]


def test_zero_overlap_pairs_are_dropped() -> None:
    pred = segments_of(torch.tensor([0, 0, 1, 1, 2, 2]))
    gt = segments_of(torch.tensor([5, 5, 5, 5, 5, 5]))
    rows, cols = match_segments(pred, gt)
    assert len(rows) == 1 and cols.tolist() == [0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=2, max_size=40), st.data())
def test_costs_and_matches_equal_the_release_loop(pred: list[int], data: st.DataObject) -> None:
    gt = data.draw(st.lists(st.integers(0, 2), min_size=len(pred), max_size=len(pred)))
    ps, gs = segments_of(torch.tensor(pred)), segments_of(torch.tensor(gt))
    torch.testing.assert_close((-overlap_scores(ps, gs)).float(), oracle.matcher_cost_loop(pred, gt))
    rows, cols = match_segments(ps, gs)
    assert (rows.tolist(), cols.tolist()) == oracle.match_loop(pred, gt)


def test_focal_loss_hand_value() -> None:
    logits = torch.tensor([[0.0, 2.0]])
    targets = torch.tensor([[1.0, 0.0]])
    p0, p1 = 0.5, 1 / (1 + math.exp(-2))
    l0 = 0.25 * (1 - p0) ** 2 * -math.log(p0)
    l1 = 0.75 * p1**2 * -math.log(1 - p1)
    assert sigmoid_focal_loss(logits, targets, num_masks=2).item() == pytest.approx((l0 + l1) / 2 / 2, rel=1e-5)


def test_dice_loss_hand_value() -> None:
    logits = torch.tensor([[0.0, 0.0, 100.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0]])
    p = [0.5, 0.5, 1.0]
    num = 2 * (0.5 + 1.0)
    den = sum(p) + 2
    assert dice_loss(logits, targets, num_masks=3).item() == pytest.approx((1 - (num + 1) / (den + 1)) / 3, rel=1e-5)


def test_class_loss_hand_value() -> None:
    cls = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 2 segments, 2 classes + no-action
    loss = segment_class_loss(cls, torch.tensor([0]), torch.tensor([1]), n_classes=2, bg_weight=0.1)
    lsm = torch.log_softmax(cls, 1)
    expected = (1.0 * -lsm[0, 1] + 0.1 * -lsm[1, 2]) / 1.1
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_tst_loss_sums_both_decoders() -> None:
    seg = segments_of(torch.tensor([0, 0, 1, 1]))
    gt = segments_of(torch.tensor([1, 1, 1, 0]))
    cls = torch.randn(2, 1, 2, 3)
    emb = torch.randn(2, 1, 2, 4)
    feats = torch.randn(1, 4, 4)
    out = TSTOutput(cls, emb, feats, torch.tensor([0, 0, 1, 1]), seg)
    matches = match_segments(seg, gt)
    res = tst_loss(out, gt, matches, n_classes=2)
    masks_target = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    total = 0.0
    for d in range(2):
        m = emb[d, 0] @ feats[0]
        pi, gi = matches
        total += segment_class_loss(cls[d, 0], pi, gt.labels[gi], 2, 0.1).item()
        total += sigmoid_focal_loss(m[pi], masks_target[gi], 2).item()
        total += dice_loss(m[pi], masks_target[gi], 2).item()
    assert res["loss"].item() == pytest.approx(total, rel=1e-5)
