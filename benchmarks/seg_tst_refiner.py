"""TST refiner on one over-segmented video: tal's vectorized refiner against the release's loops.

The release builds its segment list, pooled features and (S, T) cross-attention masks with Python loops
over frames and segments; with an untrained backbone (thousands of segments) that dominates its
forward. Baseline: ``refiner_forward_loop`` of ``packages/seg-tst/tests/oracles/release_tst.py`` (the
release's algorithm stated with those loops and dense masks), run on the same weights and inputs.
Fast: ``TSTRefiner.forward`` + hardmax decoding. Both in eval mode under ``torch.no_grad``; outputs are
compared. Breakfast sizes (48 classes, 768-d features, inner_dim 128), T = 5,000 frames.

    python benchmarks/seg_tst_refiner.py [--frames 5000] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "seg-tst" / "tests"))

from oracles.release_tst import hardmax_loop, refiner_forward_loop

from tal.seg_tst import TSTRefiner


def predictions(t_len: int, n_classes: int, run: int, gen: torch.Generator) -> torch.Tensor:
    """Frame scores whose argmax changes every ``run`` frames on average (``run=1``: random per frame)."""
    labels = torch.randint(0, n_classes, (t_len // run + 1,), generator=gen).repeat_interleave(run)[:t_len]
    return torch.nn.functional.one_hot(labels, n_classes).T.float().unsqueeze(0)


def timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    refiner = TSTRefiner(n_classes=48, feat_dim=768, inner_dim=128).eval()
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(1, 768, args.frames, generator=gen)
    for run in (1, 4):
        preds = predictions(args.frames, 48, run, gen)
        with torch.no_grad():

            def fast(preds: torch.Tensor = preds) -> tuple:
                out = refiner(feats, preds)
                return out, out.hardmax_labels()

            def loop(preds: torch.Tensor = preds) -> tuple:
                cls, _ = refiner_forward_loop(refiner, feats, preds)
                return cls, hardmax_loop(cls, preds[0].argmax(0).tolist())

            t_fast, (out, labels) = timed(fast, args.repeats)
            t_loop, (cls, labels_loop) = timed(loop, max(1, args.repeats // 2))
        n_seg = out.segments.num_segments
        same = torch.equal(labels, labels_loop)
        diff = float((out.segment_cls - cls).abs().max())
        print(
            f"refiner T={args.frames} segments={n_seg}: tal {t_fast:.3f} s vs release loops {t_loop:.3f} s: "
            f"{t_loop / t_fast:.1f}x (same hardmax labels: {same}, max |Δ logits| {diff:.1e}, "
            f"threads {torch.get_num_threads()})"
        )


if __name__ == "__main__":
    main()
