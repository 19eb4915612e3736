"""Benchmark: segmentation F1@{10,25,50} / Edit / Acc, vectorized vs the per-frame loop oracle.

1,000 synthetic videos of 5,000 frames (fixed seed, 48 classes, class 0 = background): ground truth
of 8–24 actions separated by background, predictions with shifted boundaries and spurious short
segments (over-segmentation). Both implementations run in the same process on the same data and
must agree; the oracle re-extracts segments for every score as MS-TCN's ``eval.py`` does. Timings
are noisy on a shared machine; the ratio is what to read.

    python benchmarks/core_seg_metric.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from tal.core.metrics.segmentation import evaluate_segmentation

# the loop oracle is test code (packages/core/tests/oracles): not shipped, imported from the checkout
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "core" / "tests"))
from oracles.segmentation_loop import segmentation_loop


def make_videos(n_videos: int, n_frames: int, n_classes: int = 48, seed: int = 0):
    """``(predictions, targets)``: lists of ``(n_frames,)`` int64 label arrays."""
    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for _ in range(n_videos):
        n_act = int(rng.integers(8, 25))
        cuts = np.sort(rng.choice(np.arange(1, n_frames), 2 * n_act, replace=False))
        gt = np.zeros(n_frames, np.int64)
        for a, b in cuts.reshape(-1, 2):
            gt[a:b] = rng.integers(1, n_classes)
        pred = gt.copy()
        change = np.flatnonzero(np.diff(gt)) + 1
        for c in change:  # shift each boundary by up to 40 frames
            d = int(rng.integers(-40, 41))
            lo, hi = sorted((c, c + d))
            pred[max(lo, 0) : max(hi, 0)] = gt[c - 1] if d > 0 else gt[min(c, n_frames - 1)]
        for _ in range(int(rng.integers(5, 30))):  # spurious short segments
            s = int(rng.integers(0, n_frames))
            pred[s : s + int(rng.integers(3, 60))] = rng.integers(0, n_classes)
        preds.append(pred)
        gts.append(gt)
    return preds, gts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    preds, gts = make_videos(args.videos, args.frames)
    bg = [0]
    fast_t = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fast = evaluate_segmentation(preds, gts, bg)
        fast_t = min(fast_t, time.perf_counter() - t0)
    t0 = time.perf_counter()
    loop = segmentation_loop(preds, gts, bg)
    loop_t = time.perf_counter() - t0
    assert fast.f1 == loop.f1 and fast.edit == loop.edit and fast.acc == loop.acc, (fast, loop)
    n_seg = int(loop.tp[0] + loop.fn[0])
    print(f"input: {args.videos} videos x {args.frames} frames, {n_seg} true segments")
    print(
        f"F1@10/25/50 {fast.f1[0]:.2f}/{fast.f1[1]:.2f}/{fast.f1[2]:.2f}, Edit {fast.edit:.2f}, Acc {fast.acc:.2f}"
        " (identical to the loop oracle)"
    )
    print(
        f"seg metric {args.videos}x{args.frames} frames: loop {loop_t:.2f} s, vectorized {fast_t:.3f} s, "
        f"ratio {loop_t / fast_t:.0f}x"
    )
    for conv in ("diffact",):
        t0 = time.perf_counter()
        evaluate_segmentation(preds, gts, bg, convention=conv)
        print(f"  ({conv} convention, vectorized: {time.perf_counter() - t0:.3f} s)")


if __name__ == "__main__":
    main()
