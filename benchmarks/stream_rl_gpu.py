"""SVTAS-RL on a GPU: streaming clip latency and batched clip throughput (feature input and RGB).

- streaming: the GTEA preset model, one video, one clip at a time (batch 1): median / p99 latency;
- throughput: clips of many videos at once (``--batch`` streams in parallel), fp32 and bf16 autocast:
  clips/s and video frames/s; for feature input (2048-d) and for RGB 112x112 with ``stream-conv3d``.

Exits with a message (code 0) when no CUDA device is visible.

Usage: ``python benchmarks/stream_rl_gpu.py [--batch 16] [--iters 30]``
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch


def timed(fn: Any, n: int) -> list[float]:
    fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out


def clip_step(model: Any, clips: torch.Tensor, mask: torch.Tensor, bf16: bool, state: list[Any]) -> None:
    """One clip of every stream of the batch; the state carried in ``state[0]``."""
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()
    with torch.no_grad(), amp:
        res = model.forward_clip(clips, mask, state[0])
        state[0] = [s.detach() for s in res.state]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("stream_rl_gpu: no CUDA device visible; nothing measured")
        sys.exit(0)
    from tal.stream_rl import StreamingSegmenter, build_model

    for kind in ("features", "rgb"):
        torch.manual_seed(0)
        extra = {"backbone": {"name": "stream-conv3d"}} if kind == "rgb" else {}
        model = build_model("gtea", input_dim=2048, num_classes=11, **extra).cuda().eval()
        spec = model.clip_spec
        shape = (2048, spec.clip_len) if kind == "features" else (3, spec.clip_len, 112, 112)
        stream = StreamingSegmenter(model)
        frames = torch.randn(shape[0], spec.window, *shape[2:], device="cuda")
        lat = np.asarray(timed(functools.partial(stream.push, frames), args.iters))
        print(
            f"stream_rl_gpu {kind}: streaming clip latency median {np.median(lat) * 1e3:.2f} ms, "
            f"p99 {np.percentile(lat, 99) * 1e3:.2f} ms ({spec.window / np.median(lat):.0f} video frames/s)"
        )
        clips = torch.randn(args.batch, *shape, device="cuda")
        mask = torch.ones(args.batch, spec.window, dtype=torch.bool, device="cuda")
        for bf16 in (False, True):
            step = functools.partial(clip_step, model, clips, mask, bf16, [None])
            t = float(np.median(timed(step, args.iters)))
            print(
                f"stream_rl_gpu {kind} {'bf16' if bf16 else 'fp32'}: batch {args.batch} clips in {t * 1e3:.1f} ms = "
                f"{args.batch / t:.0f} clips/s, {args.batch * spec.window / t:.0f} video frames/s"
            )


if __name__ == "__main__":
    main()
