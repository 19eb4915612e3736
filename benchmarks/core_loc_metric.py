"""Benchmark: localization mAP / Recall@kx, vectorized evaluator vs the per-class loop oracle.

THUMOS14-sized synthetic input with a fixed seed: 212 videos, 20 classes, ~16 ground-truth
instances and ~200 scored predictions per video (~3.4k instances, ~42k predictions), tIoU
0.3:0.1:0.7, Recall@1x/5x. Both implementations are timed in the same run (vectorized: best of
several repeats; loop: best of two) and their results are checked to agree. Timings are noisy on a
shared machine; the ratio is what to read.

    python benchmarks/core_loc_metric.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from tal.core.metrics.localization import DEFAULT_TIOU_THRESHOLDS, compute_detection_metrics

# the loop oracle is test code (packages/core/tests/oracles): not shipped, imported from the checkout
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "core" / "tests"))
from oracles.localization_loop import detection_metrics_loop


def thumos_like(
    seed: int = 0, n_videos: int = 212, n_classes: int = 20, gt_per_video: int = 16, pred_per_video: int = 200
):
    """Flat arrays ``(gt_video, gt_segments, gt_labels, pred_video, pred_segments, pred_labels, scores)``.

    Videos last 1–7 min and hold 1–3 classes; instances last ~4.5 s (log-normal, 0.3–60 s).
    Predictions are jittered copies of instances (60%, 80% with the right label) and random
    segments (40%), scored higher when they come from an instance.
    """
    rng = np.random.default_rng(seed)
    gv, gs, gl, pv, ps, pl, sc = [], [], [], [], [], [], []
    for v in range(n_videos):
        vid = f"video_test_{v:07d}"
        duration = rng.uniform(60, 400)
        classes = rng.choice(n_classes, size=rng.integers(1, 4), replace=False)
        n_gt = max(1, rng.poisson(gt_per_video))
        length = np.clip(rng.lognormal(1.5, 0.7, n_gt), 0.3, 60)
        start = rng.uniform(0, duration - length)
        label = rng.choice(classes, n_gt)
        gv += [vid] * n_gt
        gs.append(np.stack([start, start + length], 1))
        gl.append(label)
        n_p = max(1, rng.poisson(pred_per_video))
        src = rng.integers(0, n_gt, n_p)
        seg = np.stack([start[src], start[src] + length[src]], 1) + rng.normal(0, 0.25, (n_p, 2)) * length[src, None]
        random = rng.random(n_p) < 0.4
        r_start, r_len = rng.uniform(0, duration, n_p), np.clip(rng.lognormal(1.5, 0.8, n_p), 0.2, 80)
        seg[random] = np.stack([r_start, r_start + r_len], 1)[random]
        seg.sort(axis=1)
        pv += [vid] * n_p
        ps.append(seg)
        pl.append(np.where(rng.random(n_p) < 0.8, label[src], rng.integers(0, n_classes, n_p)))
        sc.append(rng.beta(2, 5, n_p) + 0.3 * ~random)
    return gv, np.concatenate(gs), np.concatenate(gl), pv, np.concatenate(ps), np.concatenate(pl), np.concatenate(sc)


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    data = thumos_like(args.seed)
    thr, top_k = list(DEFAULT_TIOU_THRESHOLDS), [1, 5]
    print(f"input: {len(set(data[0]))} videos, {len(data[2])} instances, {len(data[6])} predictions")
    fast_t, fast = best_of(lambda: compute_detection_metrics(*data, thr, top_k), args.repeats)
    loop_t, loop = best_of(lambda: detection_metrics_loop(*data, thr, top_k), 2)
    diff = max(np.max(np.abs(fast.ap - loop.ap)), np.max(np.abs(fast.per_class_recall - loop.per_class_recall)))
    assert diff < 1e-9, f"vectorized and loop disagree by {diff}"
    print(f"average mAP {fast.average_mAP:.4f} %, mAP {[round(v, 2) for v in fast.mAP]}, max |diff| vs loop {diff:.1e}")
    print(f"loc mAP THUMOS-sized: loop {loop_t:.2f} s, vectorized {fast_t:.3f} s, ratio {loop_t / fast_t:.0f}x")


if __name__ == "__main__":
    main()
