"""Segmentation F1 / Edit / Acc: vectorized vs the per-frame loop oracle, hand cases, real Breakfast labels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles.segmentation_loop import edit_distance, segmentation_loop

from tal.core.metrics import (
    SegmentationConfig,
    SegmentationMetric,
    evaluate_segmentation,
    extract_segments,
    levenshtein,
    register,
)
from tal.core.registry import Registry

FAST = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SHARED_DATA = Path(__file__).resolve().parents[3] / "../shared/data"
BREAKFAST = SHARED_DATA / "segmentation" / "breakfast"


def assert_same(a, b) -> None:
    np.testing.assert_allclose(a.f1, b.f1, atol=1e-9, rtol=0)
    for x, y in ((a.edit, b.edit), (a.acc, b.acc)):
        assert (math.isnan(x) and math.isnan(y)) or abs(x - y) < 1e-9
    np.testing.assert_array_equal(a.tp, b.tp)
    np.testing.assert_array_equal(a.fp, b.fp)
    np.testing.assert_array_equal(a.fn, b.fn)
    assert a.num_videos == b.num_videos and a.num_frames == b.num_frames


@st.composite
def label_sequence(draw, length: int, n_cls: int):
    out: list[int] = []
    while len(out) < length:
        out += [draw(st.integers(0, n_cls - 1))] * draw(st.integers(1, max(1, length // 3)))
    return np.array(out[:length], np.int64)


@st.composite
def videos(draw):
    n_cls = draw(st.integers(1, 5))
    pairs = []
    for _ in range(draw(st.integers(0, 5))):
        t = draw(st.integers(1, 40))
        gt = draw(label_sequence(t, n_cls))
        pred = draw(st.one_of(label_sequence(t, n_cls), st.just(gt.copy())))
        if draw(st.booleans()):  # a few frame flips: boundary jitter and one-frame segments
            for i in draw(st.lists(st.integers(0, t - 1), max_size=3)):
                pred[i] = draw(st.integers(0, n_cls - 1))
        pairs.append((pred, gt))
    bg = draw(st.lists(st.integers(0, n_cls - 1), max_size=2, unique=True))
    return [p for p, _ in pairs], [g for _, g in pairs], bg


@FAST
@given(videos(), st.sampled_from(["mstcn", "diffact"]))
def test_fast_equals_loop_oracle(data, convention):
    preds, gts, bg = data
    fast = evaluate_segmentation(preds, gts, bg, convention=convention)
    assert_same(fast, segmentation_loop(preds, gts, bg, convention=convention))


@FAST
@given(st.lists(st.integers(0, 3), max_size=12), st.lists(st.integers(0, 3), max_size=12))
def test_levenshtein_equals_full_table(a, b):
    assert levenshtein(a, b) == edit_distance(a, b)


def test_hand_computed_f1_edit_acc():
    a, b, c = 1, 2, 3
    gt = [a, a, a, a, b, b, b, b, c, c]  # A[0,4) B[4,8) C[8,10)
    pred = [a, a, c, a, b, b, b, b, b, b]  # A[0,2) C[2,3) A[3,4) B[4,10)
    # A[0,2) vs A[0,4): 2/4 = 0.5        -> TP at 0.1, 0.25 and 0.5 (hits A)
    # C[2,3) vs C[8,10): (3-8)/(10-2) < 0; other labels give 0 -> argmax is A with 0 -> FP
    # A[3,4) vs A[0,4): 1/4 = 0.25, A already hit -> FP
    # B[4,10) vs B[4,8): 4/6              -> TP;   C is never hit -> fn = 1
    # tp 2, fp 2, fn 1: P = 1/2, R = 2/3, F1 = 2 * (1/3) / (7/6) = 4/7
    # Edit: [A, C, A, B] vs [A, B, C] needs 3 edits -> (1 - 3/4) * 100 = 25; Acc: 7 of 10 frames
    r = evaluate_segmentation([np.array(pred)], [np.array(gt)])
    assert r.f1 == pytest.approx([400 / 7] * 3)
    assert r.edit == pytest.approx(25.0)
    assert r.acc == pytest.approx(70.0)
    assert r.tp.tolist() == [2, 2, 2] and r.fp.tolist() == [2, 2, 2] and r.fn.tolist() == [1, 1, 1]
    assert r.as_dict()["F1@25"] == pytest.approx(400 / 7)
    # with A as background: segments C, B vs B, C -> edit 2 of 2 -> 0; C FP, B TP, C FN -> F1 = 50
    r = evaluate_segmentation([np.array(pred)], [np.array(gt)], background_ids=[a])
    assert r.edit == pytest.approx(0.0) and r.f1 == pytest.approx([50.0] * 3)


def test_diffact_last_segment_ends_one_frame_early():
    gt = np.array([1, 1, 1, 1, 2, 2])
    pred = np.array([1, 1, 1, 1, 1, 2])
    assert extract_segments(gt)[2].tolist() == [4, 6]
    assert extract_segments(gt, convention="diffact")[2].tolist() == [4, 5]
    # MS-TCN: pred 2 = [5, 6) vs [4, 6): 1/2 -> TP at 0.5; pred 1 = [0, 5) vs [0, 4): 4/5 -> F1 100
    assert evaluate_segmentation([pred], [gt]).f1 == pytest.approx([100.0] * 3)
    # DiffAct: pred 2 = [5, 5] vs [4, 5]: intersection 0 -> FP and FN: P = R = 1/2 -> F1 50
    assert evaluate_segmentation([pred], [gt], convention="diffact").f1 == pytest.approx([50.0] * 3)
    # A one-frame last segment is [T-1, T-1] in DiffAct: 0/0 -> NaN -> even a perfect prediction misses it
    perfect = np.array([1, 1, 2])
    assert evaluate_segmentation([perfect], [perfect]).f1 == [100.0] * 3
    assert evaluate_segmentation([perfect], [perfect], convention="diffact").f1 == pytest.approx([50.0] * 3)


def test_defined_behaviour_where_the_evaluators_fail():
    bg = [0]
    # ground truth all background, prediction with one segment: evaluators crash; here 1 FP
    r = evaluate_segmentation([np.array([0, 1, 1, 0])], [np.zeros(4, np.int64)], bg)
    assert r.fp.tolist() == [1, 1, 1] and r.tp.tolist() == [0, 0, 0] and r.f1 == [0.0] * 3 and r.edit == 0.0
    # both all background: evaluators give Edit NaN; here 100
    r = evaluate_segmentation([np.zeros(4, np.int64)], [np.zeros(4, np.int64)], bg)
    assert r.edit == 100.0 and r.acc == 100.0 and r.f1 == [0.0] * 3
    # no videos: NaN Acc / Edit, F1 0
    r = evaluate_segmentation([], [])
    assert math.isnan(r.acc) and math.isnan(r.edit) and r.f1 == [0.0] * 3
    with pytest.raises(ValueError, match="0 frames"):
        evaluate_segmentation([np.zeros(0)], [np.zeros(0)])
    with pytest.raises(ValueError, match="frames"):
        evaluate_segmentation([np.zeros(3)], [np.zeros(4)])
    with pytest.raises(ValueError, match="convention"):
        evaluate_segmentation([np.zeros(3)], [np.zeros(3)], convention="asformer")


# ---------------------------------------------------------------------------------------------
# Real Breakfast ground truth
# ---------------------------------------------------------------------------------------------
def _breakfast() -> tuple[list[np.ndarray], list[str]]:
    if not (BREAKFAST / "groundTruth").is_dir():
        pytest.skip(f"shared Breakfast sample data not found at {BREAKFAST.resolve()}")
    names = [line.split()[1] for line in (BREAKFAST / "mapping.txt").read_text().splitlines() if line.strip()]
    index = {n: i for i, n in enumerate(names)}
    gts = [
        np.array([index[x] for x in f.read_text().split("\n")[:-1]], np.int64)
        for f in sorted((BREAKFAST / "groundTruth").glob("*.txt"))
    ]
    return gts, names


def _corrupt(gt: np.ndarray, rng: np.random.Generator, n_cls: int) -> np.ndarray:
    pred = np.roll(gt, int(rng.integers(-40, 41)))  # shifted boundaries
    for _ in range(int(rng.integers(0, 6))):  # spurious short segments
        s = int(rng.integers(0, len(pred)))
        pred[s : s + int(rng.integers(1, 30))] = rng.integers(0, n_cls)
    return pred


def test_breakfast_perfect_prediction_scores_100():
    gts, names = _breakfast()
    for bg in ([], [names.index("SIL")]):
        for convention in ("mstcn", "diffact"):
            r = evaluate_segmentation(gts, gts, bg, convention=convention)
            assert r.acc == 100.0 and r.edit == 100.0
            if convention == "mstcn":
                assert r.f1 == [100.0] * 3
    assert sum(len(g) for g in gts) == evaluate_segmentation(gts, gts).num_frames


def test_breakfast_shifted_predictions_equal_loop_oracle():
    gts, names = _breakfast()
    rng = np.random.default_rng(0)
    preds = [_corrupt(g, rng, len(names)) for g in gts]
    for bg in ([], [names.index("SIL")]):
        for convention in ("mstcn", "diffact"):
            fast = evaluate_segmentation(preds, gts, bg, convention=convention)
            assert_same(fast, segmentation_loop(preds, gts, bg, convention=convention))
            assert 0 < fast.f1[0] < 100


def test_breakfast_metric_object_resolves_background_names():
    gts, names = _breakfast()
    rng = np.random.default_rng(1)
    preds = [torch.as_tensor(_corrupt(g, rng, len(names))) for g in gts]
    ids = [f"video{i}" for i in range(len(gts))]
    sil = SegmentationMetric(background=["SIL"], class_names=names)
    assert sil.background_ids == [0]
    default = SegmentationMetric(class_names=names)  # "background" is not a Breakfast class
    assert default.background_ids == []
    for m, bg in ((sil, [0]), (default, [])):
        m.update(preds[:7], [torch.as_tensor(g) for g in gts[:7]], ids[:7])
        other = SegmentationMetric(background_ids=bg)
        other.update(preds[7:], gts[7:], ids[7:])
        other.update(preds[:1], gts[:1], ids[:1])  # a repeated video id is dropped
        m.merge(other)
        m.sync()
        expected = evaluate_segmentation(preds, gts, bg).as_dict()
        out = m.compute()
        for key in ("F1@10", "F1@25", "F1@50", "Edit", "Acc"):
            assert out[key] == pytest.approx(expected[key], abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Metric object and registration
# ---------------------------------------------------------------------------------------------
def test_metric_needs_class_names_for_background_names():
    m = SegmentationMetric()
    with pytest.raises(RuntimeError, match="set_class_names"):
        m.update([np.zeros(3)], [np.zeros(3)], ["a"])
    m.set_class_names(["action", "background"])
    assert m.background_ids == [1]
    m.update([np.array([0, 1, 1])], [np.array([0, 0, 1])], ["a"])
    assert m.compute()["Acc"] == pytest.approx(200 / 3)
    assert SegmentationMetric(background=[]).background_ids == []
    assert SegmentationMetric(background_ids=[3], class_names=["background"]).background_ids == [3]
    with pytest.raises(ValueError, match="cannot merge"):
        SegmentationMetric(background_ids=[]).merge(SegmentationMetric(background_ids=[], convention="diffact"))


def test_registered_segmentation_metric():
    reg = Registry()
    register(reg)
    cfg = reg.get("metrics", "segmentation").config(background=["SIL"], class_names=["SIL", "pour_milk"])
    metric = reg.build("metrics", cfg)
    assert isinstance(metric, SegmentationMetric) and metric.background_ids == [0]
    cfg = SegmentationConfig(background_ids=[2], convention="diffact")
    metric = reg.build("metrics", cfg)
    assert metric.background_ids == [2] and metric.convention == "diffact"
    with pytest.raises(ValueError):
        SegmentationConfig(overlaps=[0.0])
    with pytest.raises(ValueError):
        SegmentationConfig(convention="other")
