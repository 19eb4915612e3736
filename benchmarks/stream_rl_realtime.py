"""SVTAS-RL feature-input streaming on the CPU vs real time: per-clip latency (median, p99), frames/s.

The GTEA preset model (``build_model("gtea", input_dim=2048, num_classes=11)``: the release's head,
8 encoder layers with a 512-slot recurrent state, 3 decoders; clips of 64 sampled frames every 2 =
128 frames) streams random 2048-d I3D-sized features of a GTEA-like video, pushed one clip of frames
at a time. The baseline, measured in the same run, is real time: a clip's 128 frames last
128 / 30 s at 30 fps, so the real-time factor is ``(128 / 30) / median clip latency`` (target >= 20x).

Usage: ``python benchmarks/stream_rl_realtime.py [--clips 40] [--threads 1 2] [--fps 30]`` (one line per
thread count: on a shared machine a second thread can cost more in synchronisation than it saves).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def measure(model: torch.nn.Module, clips: int) -> np.ndarray:
    """Seconds of each clip of a ``clips``-clip video pushed one clip at a time (after a warm-up clip)."""
    from tal.stream_rl import StreamingSegmenter

    window = model.clip_spec.window
    stream = StreamingSegmenter(model)
    stream.push(torch.randn(2048, window))  # warm-up clip (allocations, rotary tables)
    stream.reset()
    gen = torch.Generator().manual_seed(1)
    latencies = []
    for _ in range(clips):
        frames = torch.randn(2048, window, generator=gen)
        t0 = time.perf_counter()
        out = stream.push(frames)
        latencies.append(time.perf_counter() - t0)
        assert len(out) == window
    return np.asarray(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=40, help="clips of the video (40 x 128 frames: 2.8 min at 30 fps)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch intra-op thread counts to run")
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()

    from tal.stream_rl import build_model

    torch.manual_seed(0)
    model = build_model("gtea", input_dim=2048, num_classes=11).eval()
    spec = model.clip_spec
    real_time = spec.window / args.fps
    for threads in args.threads:
        torch.set_num_threads(threads)
        lat = measure(model, args.clips)
        median = float(np.median(lat))
        print(
            f"stream_rl_realtime: GTEA preset (2048-d features, clip {spec.clip_len}x{spec.sample_rate} = "
            f"{spec.window} frames), {args.clips} clips, {threads} thread(s), load average "
            f"{os.getloadavg()[0]:.1f}: clip latency median {median * 1e3:.1f} ms, p99 "
            f"{np.percentile(lat, 99) * 1e3:.1f} ms, max {lat.max() * 1e3:.1f} ms; "
            f"{spec.window * len(lat) / lat.sum():.0f} frames/s; real time {real_time * 1e3:.0f} ms per clip at "
            f"{args.fps:g} fps: {real_time / median:.1f}x real time (median clip; target >= 20x)"
        )


if __name__ == "__main__":
    main()
