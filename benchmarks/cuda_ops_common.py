"""Timing helpers and input generators shared by the benchmarks/cuda_ops_*.py scripts (not a benchmark itself)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def best_of(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best wall time in ms of each function, interleaved round by round (load hits every variant alike)."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: value * 1e3 for name, value in best.items()}


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in ms over ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def thumos_like(n: int, num_classes: int = 20, seed: int = 0, length: float = 2304.0):
    """ActionFormer-like candidates: widths 1..400 steps on a ``length``-step grid, scores u**3, Zipf(1) classes."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(n, generator=g) * length
    widths = torch.exp(torch.rand(n, generator=g) * 6.0)
    segs = torch.stack([centers - widths / 2, centers + widths / 2], 1).clamp(0, length)
    scores = torch.rand(n, generator=g) ** 3
    probs = 1.0 / torch.arange(1, num_classes + 1, dtype=torch.float64)
    labels = torch.multinomial(probs, n, replacement=True, generator=g)
    return segs.float(), scores.float(), labels
