"""segment_iou of 8,192 x 8,192 float32 segments on CPU vs the write-bandwidth floor and the torch reference.

The floor is measured in the same run: the fastest way torch fills a fresh
8,192 x 8,192 float32 tensor (``torch.empty(...).fill_`` or ``torch.full``),
allocation and page faults included, exactly like the op, which must allocate
its output too. Timings are interleaved round by round (best of the rounds) so
that load from other processes hits every variant alike.
Run: python benchmarks/cuda_ops_segment_iou.py [--n 8192] [--rounds 7]
"""

from __future__ import annotations

import argparse

import torch
from cuda_ops_common import best_of

import tal.cuda_ops as ops
from tal.cuda_ops import _reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    n = args.n
    g = torch.Generator().manual_seed(0)
    starts = torch.rand(n, generator=g) * 2304
    a = torch.stack([starts, starts + torch.rand(n, generator=g) * 200], 1)
    starts = torch.rand(n, generator=g) * 2304
    b = torch.stack([starts, starts + torch.rand(n, generator=g) * 200], 1)
    info = ops.backend_info()["segment_iou"]["cpu"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; segment_iou on CPU: {info.impl}")
    assert torch.equal(ops.segment_iou(a[:512], b[:512]), _reference.segment_iou(a[:512], b[:512]))
    res = best_of(
        {
            "fill_": lambda: torch.empty(n, n).fill_(0.5),
            "full": lambda: torch.full((n, n), 0.5),
            "op": lambda: ops.segment_iou(a, b),
            "reference": lambda: _reference.segment_iou(a, b),
        },
        args.rounds,
    )
    floor = min(res["fill_"], res["full"])
    print(
        f"segment_iou {n}x{n} float32: op ({info.impl}) {res['op']:.1f} ms, write floor {floor:.1f} ms "
        f"(op/floor {res['op'] / floor:.2f}x), torch reference {res['reference']:.1f} ms "
        f"(reference/op {res['reference'] / res['op']:.1f}x)"
    )


if __name__ == "__main__":
    main()
