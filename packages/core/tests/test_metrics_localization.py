"""Localization mAP / Recall@kx: vectorized evaluator vs the loop oracle, hand cases, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles.localization_loop import detection_metrics_loop

from tal.core.metrics import (
    DetectionMapConfig,
    DetectionMetric,
    _matching,
    compute_detection_metrics,
    evaluate_detection,
    register,
    segment_iou,
)
from tal.core.metrics.localization import duplicate_free_mask, interpolated_ap
from tal.core.registry import Registry
from tal.core.types import Segments

FAST = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def seg(rows: list[tuple[float, float]], labels: list[int], scores: list[float] | None = None) -> Segments:
    scores_t = None if scores is None else torch.tensor(scores, dtype=torch.float64)
    return Segments(torch.tensor(rows, dtype=torch.float64).reshape(-1, 2), torch.tensor(labels), scores_t)


def assert_same(a, b) -> None:
    """Two LocalizationResults agree to 1e-9 (NaN == NaN)."""
    np.testing.assert_allclose(a.mAP, b.mAP, atol=1e-9, rtol=0, equal_nan=True)
    assert (math.isnan(a.average_mAP) and math.isnan(b.average_mAP)) or abs(a.average_mAP - b.average_mAP) < 1e-9
    np.testing.assert_allclose(a.ap, b.ap, atol=1e-9, rtol=0)
    np.testing.assert_allclose(a.per_class_recall, b.per_class_recall, atol=1e-9, rtol=0)
    assert a.recall.keys() == b.recall.keys()
    for k in a.recall:
        np.testing.assert_allclose(a.recall[k], b.recall[k], atol=1e-9, rtol=0, equal_nan=True)
    np.testing.assert_array_equal(a.classes, b.classes)


# ---------------------------------------------------------------------------------------------
# Random data: ties everywhere (integer grids, few score values), empty videos, label gaps
# ---------------------------------------------------------------------------------------------
@st.composite
def detection_data(draw, max_videos: int = 5):
    n_vid = draw(st.integers(0, max_videos))
    label_pool = draw(st.lists(st.integers(0, 7), min_size=1, max_size=4, unique=True))
    score_pool = draw(st.lists(st.sampled_from([0.1, 0.2, 0.5, 0.7, 0.9, 1.0]), min_size=1, max_size=4))
    gt_v, gt_s, gt_l, p_v, p_s, p_l, p_c = [], [], [], [], [], [], []
    coord = st.integers(0, 12)
    for v in range(n_vid):
        vid = f"v{v}"
        for _ in range(draw(st.integers(0, 5))):
            a, b = sorted((draw(coord), draw(coord)))
            gt_v.append(vid)
            gt_s.append((a, b + draw(st.sampled_from([0, 0, 0.0005, 1]))))
            gt_l.append(draw(st.sampled_from(label_pool)))
        for _ in range(draw(st.integers(0, 12))):
            a, b = sorted((draw(coord), draw(coord)))
            p_v.append(draw(st.sampled_from([vid, vid, vid, "extra"])))  # some in a video without GT
            p_s.append((a, b))
            p_l.append(draw(st.sampled_from([*label_pool, 0, 1, 9])))  # some of classes without GT
            p_c.append(draw(st.sampled_from(score_pool)))
    thresholds = draw(st.lists(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.75, 1.0]), min_size=1, max_size=4))
    top_k = draw(st.lists(st.integers(1, 5), min_size=1, max_size=2))
    return (
        gt_v,
        np.array(gt_s, float).reshape(-1, 2),
        np.array(gt_l, np.int64),
        p_v,
        np.array(p_s, float).reshape(-1, 2),
        np.array(p_l, np.int64),
        np.array(p_c, float),
    ), (thresholds, top_k)


@FAST
@given(
    detection_data(), st.sampled_from(["actionformer", "exact"]), st.booleans(), st.sampled_from(["numpy", "stable"])
)
def test_fast_equals_loop_oracle(data, label_mode, dedup, tie_order):
    arrays, (thr, top_k) = data
    kw = {"label_mode": label_mode, "dedup_gt": dedup, "tie_order": tie_order}
    assert_same(compute_detection_metrics(*arrays, thr, top_k, **kw), detection_metrics_loop(*arrays, thr, top_k, **kw))


@FAST
@given(detection_data(), st.data())
def test_odd_predictions_score_as_the_loop_oracle(data, draw):
    """Negative starts, ends past the video, zero-length and inverted predictions (what published result
    files contain) are scored as given: identical to the transcription of the reference evaluator."""
    (gv, gs, gl, pv, ps, pl, pc), (thr, top_k) = data
    odd = ps.copy()
    for i in range(len(odd)):
        kind = draw.draw(st.sampled_from(["keep", "negative", "inverted", "zero", "past"]))
        if kind == "negative":
            odd[i, 0] -= draw.draw(st.sampled_from([0.5, 3.0, 20.0]))
        elif kind == "inverted":
            odd[i] = odd[i, ::-1] + np.array([0.0, -1.0])
        elif kind == "zero":
            odd[i, 1] = odd[i, 0]
        elif kind == "past":
            odd[i, 1] += 100.0
    args = (gv, gs, gl, pv, odd, pl, pc, thr, top_k)
    with np.errstate(divide="ignore", invalid="ignore"):
        assert_same(compute_detection_metrics(*args), detection_metrics_loop(*args))


def test_fast_equals_loop_oracle_on_a_larger_random_set():
    rng = np.random.default_rng(3)
    n_gt, n_pred = 400, 3000
    gv = [f"v{i}" for i in rng.integers(0, 30, n_gt)]
    gs = rng.uniform(0, 100, n_gt)
    gseg = np.stack([gs, gs + rng.uniform(0.5, 20, n_gt)], 1)
    glab = rng.choice([0, 2, 3, 5, 8], n_gt)
    src = rng.integers(0, n_gt, n_pred)
    pseg = gseg[src] + rng.normal(0, 2, (n_pred, 2))
    pseg.sort(axis=1)
    pv = [gv[i] if rng.random() < 0.9 else f"w{i % 7}" for i in src]
    plab = np.where(rng.random(n_pred) < 0.8, glab[src], rng.integers(0, 10, n_pred))
    score = np.round(rng.random(n_pred), 2)  # many ties
    for thr in ([0.3, 0.4, 0.5, 0.6, 0.7], [0.1, 0.5, 0.95]):
        for mode in ("actionformer", "exact"):
            args = (gv, gseg, glab, pv, pseg, plab, score, thr, (1, 2, 5))
            assert_same(
                compute_detection_metrics(*args, label_mode=mode), detection_metrics_loop(*args, label_mode=mode)
            )


@pytest.mark.parametrize("round_cost", [0, 10**9])  # sequential rounds vs waves for tangled candidates
def test_dense_overlapping_ground_truth_equals_loop_oracle(monkeypatch, round_cost):
    monkeypatch.setattr(_matching, "_ROUND_COST", round_cost)
    rng = np.random.default_rng(7)
    gv, gseg, glab, pv, pseg, plab, score = [], [], [], [], [], [], []
    for v in range(6):
        s = rng.uniform(0, 50, 30)
        gseg.append(np.stack([s, s + rng.uniform(2, 15, 30)], 1))  # heavily overlapping instances
        glab.append(rng.integers(0, 2, 30))
        gv += [f"v{v}"] * 30
        src = rng.integers(0, 30, 300)
        seg = gseg[-1][src] + rng.normal(0, 1.5, (300, 2))
        pseg.append(np.sort(seg, axis=1))
        plab.append(glab[-1][src])
        pv += [f"v{v}"] * 300
        score.append(np.round(rng.random(300), 2))
    args = (gv, *map(np.concatenate, (gseg, glab)), pv, *map(np.concatenate, (pseg, plab, score)))
    thr, k = [0.1, 0.3, 0.5, 0.7], [1, 5]
    assert_same(compute_detection_metrics(*args, thr, k), detection_metrics_loop(*args, thr, k))


def test_empty_inputs():
    empty = ([], np.zeros((0, 2)), np.zeros(0, np.int64))
    no_pred = ([], np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0))
    r = compute_detection_metrics(*empty, *no_pred)
    assert all(math.isnan(v) for v in r.mAP) and math.isnan(r.average_mAP)
    assert_same(r, detection_metrics_loop(*empty, *no_pred))
    # ground truth but no prediction: AP 0 and recall 0 for every class
    r = compute_detection_metrics(["a"], [[0, 1]], [4], *no_pred)
    assert r.mAP == [0.0] * 5 and r.recall["1x"] == [0.0] * 5 and r.classes.tolist() == [4]
    # predictions but no ground truth: nothing to score
    r = compute_detection_metrics(*empty, ["a"], [[0, 1]], [4], [0.5])
    assert math.isnan(r.average_mAP)


# ---------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------
def test_hand_computed_ap_and_recall():
    # One video, one class, ground truth A = [0, 10] and B = [20, 30].
    # p1 [0, 10] (0.9): tIoU(A) = 1                     -> TP (locks A)
    # p2 [1, 10] (0.8): tIoU(A) = 9/10 but A is locked, next is B with tIoU 0 < thr -> FP
    # p3 [20, 28] (0.7): tIoU(B) = 8/10 = 0.8
    gt = {"v": seg([(0, 10), (20, 30)], [0, 0])}
    pred = {"v": seg([(0, 10), (1, 10), (20, 28)], [0, 0, 0], [0.9, 0.8, 0.7])}
    r = evaluate_detection(gt, pred, [0.5, 0.85], top_k=[1, 5])
    # thr 0.5: tp = 1,0,1 -> precision 1, 1/2, 2/3; recall 1/2, 1/2, 1
    #   envelope of [0, 1, .5, .667, 0] from the right = [1, 1, .667, .667, 0]; recall [0, .5, .5, 1, 1]
    #   AP = (0.5 - 0) * 1 + (1 - 0.5) * 2/3 = 0.8333
    assert r.mAP[0] == pytest.approx((0.5 * 1 + 0.5 * 2 / 3) * 100)
    # thr 0.85: p3 has tIoU 0.8 -> FP; tp = 1,0,0 -> precision 1, 1/2, 1/3; recall 1/2, 1/2, 1/2
    #   AP = (0.5 - 0) * 1 + (1 - 0.5) * 0 = 0.5
    assert r.mAP[1] == pytest.approx(50.0)
    assert r.average_mAP == pytest.approx((250 / 3 + 50) / 2)
    # Recall@1x: 2 instances -> top 2 predictions p1, p2 both cover A only -> 1/2 at both thresholds.
    # Recall@5x: top 10 -> all three: thr 0.5 covers A and B (1), thr 0.85 only A (1/2).
    assert r.recall["1x"] == pytest.approx([50.0, 50.0])
    assert r.recall["5x"] == pytest.approx([100.0, 50.0])
    assert r.as_dict()["mAP@0.5"] == pytest.approx(r.mAP[0])
    assert r.as_dict()["recall@5x@0.85"] == pytest.approx(50.0)


def test_tied_scores_come_in_reverse_input_order_with_a_stable_sort():
    # Ground truth [0, 10]. q1 [0, 10] (tIoU 1) and q2 [0, 5] (tIoU 0.5) both score 0.5, q1 first.
    # The evaluator reverses an ascending argsort, so with a stable sort q2 is ranked first.
    gt = {"v": seg([(0, 10)], [0])}
    pred = {"v": seg([(0, 10), (0, 5)], [0, 0], [0.5, 0.5])}
    r = evaluate_detection(gt, pred, [0.5, 0.7], tie_order="stable")
    # thr 0.5: q2 TP, q1 FP (locked) -> precision 1, 1/2; recall 1, 1 -> AP = 1 * 1 = 100
    # thr 0.7: q2 FP (0.5 < 0.7), q1 TP -> precision 0, 1/2; recall 0, 1 -> AP = (1 - 0) * 1/2 = 50
    assert r.mAP == pytest.approx([100.0, 50.0])


def test_numpy_tie_order_follows_numpys_own_argsort():
    # Five tied-score predictions of one instance: the evaluator's ranking is argsort()[::-1] with
    # NumPy's default (possibly unstable, SIMD) sort; "numpy" reproduces whatever it returns here.
    scores = np.array([0.9, 0.9, 0.5, 0.2, 0.9])
    rows = [(0, 10), (0, 6), (0, 10), (0, 10), (0, 4)]  # tIoU 1, 0.6, 1, 1, 0.4 with [0, 10]
    gt = {"v": seg([(0, 10)], [0])}
    pred = {"v": seg(rows, [0] * 5, scores.tolist())}
    first = int(np.argsort(scores)[::-1][0])  # the prediction ranked first takes the instance
    got = evaluate_detection(gt, pred, [0.5], tie_order="numpy").mAP[0]
    assert got == pytest.approx(100.0 if rows[first][1] >= 5 else 50.0)
    loop = detection_metrics_loop(["v"], [[0, 10]], [0], ["v"] * 5, rows, [0] * 5, scores, [0.5], tie_order="numpy")
    assert got == loop.mAP[0]


def test_prediction_checks_ground_truth_by_descending_tiou_and_skips_locked():
    # Ground truth A = [0, 10], B = [0, 8]; p1 = [0, 8] takes B (tIoU 1), p2 = [0, 10] takes A.
    gt = {"v": seg([(0, 10), (0, 8)], [0, 0])}
    pred = {"v": seg([(0, 8), (0, 10)], [0, 0], [0.9, 0.8])}
    assert evaluate_detection(gt, pred, [0.5]).mAP == [100.0]
    # p1 = [0, 9] prefers A (0.9 vs 8/9); p2 = [0, 9.5] wants A too (locked) and takes B (8/9.5 = 0.84).
    pred = {"v": seg([(0, 9), (0, 9.5)], [0, 0], [0.9, 0.8])}
    assert evaluate_detection(gt, pred, [0.8]).mAP == [100.0]
    assert evaluate_detection(gt, pred, [0.85]).mAP == pytest.approx([50.0])  # p2 -> FP: AP = 0.5 * 1


def test_predictions_without_ground_truth_video_are_false_positives():
    gt = {"v": seg([(0, 10)], [0])}
    pred = {"v": seg([(0, 10)], [0], [0.5]), "other": seg([(0, 10)], [0], [0.9])}
    # ranked: other (FP), v (TP) -> precision 0, 1/2; recall 0, 1 -> AP = 50
    assert evaluate_detection(gt, pred, [0.5]).mAP == pytest.approx([50.0])


def test_label_matching_actionformer_renumbering_vs_exact():
    # Ground-truth ids {3, 5} are renumbered to {0, 1}; a prediction labelled 0 (no such class)
    # keeps its raw value 0 and is scored as class index 0, i.e. as label 3.
    gt = {"v": seg([(0, 10), (20, 30)], [3, 5])}
    pred = {"v": seg([(0, 10), (20, 30)], [0, 5], [0.9, 0.8])}
    assert evaluate_detection(gt, pred, [0.5], label_mode="actionformer").mAP == [100.0]
    assert evaluate_detection(gt, pred, [0.5], label_mode="exact").mAP == [50.0]  # class 3: AP 0
    # A label beyond the renumbered range (7 >= 2 classes) is ignored in both modes.
    pred = {"v": seg([(0, 10), (20, 30), (0, 10)], [3, 5, 7], [0.9, 0.8, 0.95])}
    assert evaluate_detection(gt, pred, [0.5]).mAP == [100.0]


def test_duplicate_ground_truth_is_removed_like_actionformer_reader():
    gt = {"v": seg([(0, 10), (0.0005, 10.0009), (5, 5.0005), (20, 30)], [0, 0, 0, 1])}
    keep = duplicate_free_mask(np.zeros(4, np.int64), gt["v"].segments.numpy(), gt["v"].labels.numpy())
    assert keep.tolist() == [True, False, False, True]  # a near-duplicate and a 0.5 ms instance
    pred = {"v": seg([(0, 10), (20, 30)], [0, 1], [0.9, 0.8])}
    assert evaluate_detection(gt, pred, [0.5]).mAP == [100.0]
    # without the clean-up class 0 has 3 instances, 1 found: precision 1, recall 1/3 -> AP 1/3
    assert evaluate_detection(gt, pred, [0.5], dedup_gt=False).ap[0].tolist() == pytest.approx([100 / 3, 100.0])
    # chains: the 2nd is a duplicate of the 1st (dropped), the 3rd only of the dropped 2nd (kept)
    segs = np.array([[0, 10], [0.0008, 10], [0.0016, 10]])
    assert duplicate_free_mask(np.zeros(3, np.int64), segs, np.zeros(3, np.int64)).tolist() == [True, False, True]


def test_segment_iou_and_interpolation_helpers():
    iou = segment_iou([[0, 10], [5, 15]], [[0, 10], [10, 20], [20, 30]])
    np.testing.assert_allclose(iou, [[1, 0, 0], [5 / 15, 5 / 15, 0]])
    # precision 1, 0.5; recall 0.5, 0.5 -> 0.5
    assert interpolated_ap(np.array([1.0, 0.5]), np.array([0.5, 0.5])) == 0.5


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------
@st.composite
def clean_ground_truth(draw):
    """Per (video, class) pairwise-disjoint instances of length >= 1 s: no duplicates."""
    gt = {}
    for v in range(draw(st.integers(1, 4))):
        rows, labels = [], []
        for c in range(draw(st.integers(1, 3))):
            t = 0.0
            for _ in range(draw(st.integers(1, 4))):
                t += draw(st.floats(0, 5))
                length = draw(st.floats(1, 10))
                rows.append((t, t + length))
                labels.append(c * 2)
                t += length
        gt[f"v{v}"] = seg(rows, labels)
    return gt


def _distinct_scores(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n) / max(n, 1) + 0.01


@FAST
@given(clean_ground_truth())
def test_perfect_predictions_score_100(gt):
    pred = {v: Segments(s.segments, s.labels, torch.ones(len(s))) for v, s in gt.items()}
    r = evaluate_detection(gt, pred, [0.1, 0.5, 0.95, 1.0], top_k=[1, 5])
    assert r.mAP == [100.0] * 4 and r.average_mAP == 100.0
    assert r.recall == {"1x": [100.0] * 4, "5x": [100.0] * 4}


@st.composite
def scored_predictions(draw, gt):
    pred = {}
    n = 0
    for v in gt:
        k = draw(st.integers(0, 8))
        rows = [(a, a + draw(st.floats(0.5, 12))) for a in (draw(st.floats(0, 40)) for _ in range(k))]
        pred[v] = seg(rows, [draw(st.sampled_from([0, 2, 4])) for _ in range(k)], [0.0] * k)
        n += k
    scores = _distinct_scores(n, draw(st.integers(0, 10**6)))
    i = 0
    for s in pred.values():
        s.scores = torch.as_tensor(scores[i : i + len(s)], dtype=torch.float64)
        i += len(s)
    return pred


@FAST
@given(st.data())
def test_permuting_videos_changes_nothing(data):
    gt = data.draw(clean_ground_truth())
    pred = data.draw(scored_predictions(gt))
    perm = data.draw(st.permutations(list(pred)))
    gperm = data.draw(st.permutations(list(gt)))
    a = evaluate_detection(gt, pred, [0.3, 0.5, 0.7])
    b = evaluate_detection({v: gt[v] for v in gperm}, {v: pred[v] for v in perm}, [0.3, 0.5, 0.7])
    assert_same(a, b)
    for v in a.mAP + [a.average_mAP] + a.recall["1x"] + a.recall["5x"]:
        assert 0.0 <= v <= 100.0


@FAST
@given(st.data())
def test_lower_scored_duplicate_never_raises_ap(data):
    # Holds for thresholds > 0.5 with pairwise-disjoint ground truth: a prediction then has at most
    # one candidate instance, so a copy can only be a false positive, which never raises AP.
    gt = data.draw(clean_ground_truth())
    pred = data.draw(scored_predictions(gt))
    videos = [v for v in pred if len(pred[v])]
    if not videos:
        return
    v = data.draw(st.sampled_from(videos))
    i = data.draw(st.integers(0, len(pred[v]) - 1))
    s = pred[v]
    lower = float(s.scores[i]) * data.draw(st.floats(0.1, 0.999))
    dup = Segments(
        torch.cat([s.segments, s.segments[i : i + 1]]),
        torch.cat([s.labels, s.labels[i : i + 1]]),
        torch.cat([s.scores, torch.tensor([lower], dtype=torch.float64)]),
    )
    thr = [0.55, 0.7, 0.9]
    before = evaluate_detection(gt, pred, thr)
    after = evaluate_detection(gt, {**pred, v: dup}, thr)
    assert np.all(after.ap <= before.ap + 1e-12)


def test_lower_scored_duplicate_can_raise_ap_when_instances_overlap():
    # Why the property above needs its precondition: A = [0, 10] and B = [0, 9] overlap; the copy
    # of p (tIoU 1 with A, 0.9 with B) takes B once p has locked A.
    gt = {"v": seg([(0, 10), (0, 9)], [0, 0])}
    pred = {"v": seg([(0, 10)], [0], [0.9])}
    dup = {"v": seg([(0, 10), (0, 10)], [0, 0], [0.9, 0.5])}
    assert evaluate_detection(gt, pred, [0.5]).mAP == [50.0]
    assert evaluate_detection(gt, dup, [0.5]).mAP == [100.0]


# ---------------------------------------------------------------------------------------------
# Metric object and registration
# ---------------------------------------------------------------------------------------------
def _random_videos(n: int, seed: int) -> tuple[dict[str, Segments], dict[str, Segments]]:
    rng = np.random.default_rng(seed)
    gt, pred = {}, {}
    for v in range(n):
        k = int(rng.integers(0, 4))
        s = rng.uniform(0, 50, k)
        gt[f"v{v}"] = seg(list(zip(s, s + rng.uniform(1, 10, k), strict=True)), rng.integers(0, 3, k).tolist())
        m = int(rng.integers(0, 10))
        s = rng.uniform(0, 50, m)
        pred[f"v{v}"] = seg(
            list(zip(s, s + rng.uniform(1, 10, m), strict=True)), rng.integers(0, 3, m).tolist(), rng.random(m).tolist()
        )
    return gt, pred


def test_metric_object_batches_merge_and_repeated_videos():
    gt, pred = _random_videos(12, 0)
    ids = list(gt)
    expected = evaluate_detection(gt, pred, [0.3, 0.5, 0.7]).as_dict()
    a, b = DetectionMetric([0.3, 0.5, 0.7]), DetectionMetric([0.3, 0.5, 0.7])
    a.update([pred[v] for v in ids[:5]], [gt[v] for v in ids[:5]], ids[:5])
    b.update([pred[v] for v in ids[5:]], [gt[v] for v in ids[5:]], ids[5:])
    b.update([pred[ids[0]]], [gt[ids[0]]], ids[:1])  # DistributedSampler padding repeats a video
    a.merge(b)
    a.sync()  # no process group: no-op
    out = a.compute()
    for key in ("average_mAP", "mAP@0.3", "mAP@0.7", "recall@1x@0.5", "recall@5x@0.3"):
        assert out[key] == pytest.approx(expected[key], abs=1e-12)
    assert len(a) == 13
    a.reset()
    assert len(a) == 0 and math.isnan(a.compute()["average_mAP"])
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(DetectionMetric([0.5]))
    with pytest.raises(ValueError, match="no scores"):
        a.update([gt[ids[0]]], [gt[ids[0]]], ids[:1])


def test_registered_metric_builds_from_config():
    reg = Registry()
    register(reg)
    assert set(reg.names("metrics")) == {"detection-map", "segmentation", "recognition"}
    comp = reg.get("metrics", "detection-map")
    cfg = comp.config()
    assert cfg.tiou_thresholds == np.linspace(0.3, 0.7, 5).tolist() and cfg.top_k == [1, 5]  # ActionFormer's floats
    assert cfg.tiou_thresholds == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7])
    metric = reg.build("metrics", cfg)
    assert isinstance(metric, DetectionMetric)
    from tal.core.protocols import Metric

    assert isinstance(metric, Metric)
    with pytest.raises(ValueError):
        DetectionMapConfig(tiou_thresholds=[1.5])
    with pytest.raises(ValueError):
        DetectionMapConfig(top_k=[0])
