"""SVTAS-RL end-to-end RGB streaming on the CPU: frames/s with the small 3-D backbone at 112x112.

The GTEA clip settings (64 sampled frames every 2 = 128 frames per clip) with ``stream-conv3d``
(widths 16-32-64-128, temporal stride 2, spatial mean pooling) and the release's head; random RGB
frames ``(3, 128, 112, 112)`` are pushed one clip at a time (decoding and resizing not included).
The baseline, measured in the same run, is real time at 30 fps.

Usage: ``python benchmarks/stream_rl_rgb.py [--clips 10] [--size 112] [--threads 1 2]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch intra-op thread counts to run")
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()

    from tal.stream_rl import StreamingSegmenter, build_model

    torch.manual_seed(0)
    model = build_model("gtea", num_classes=11, backbone={"name": "stream-conv3d"}).eval()
    spec = model.clip_spec
    window = spec.window
    for threads in args.threads:
        torch.set_num_threads(threads)
        stream = StreamingSegmenter(model)
        gen = torch.Generator().manual_seed(1)
        stream.push(torch.randn(3, window, args.size, args.size, generator=gen))  # warm-up
        stream.reset()
        latencies = []
        for _ in range(args.clips):
            frames = torch.randn(3, window, args.size, args.size, generator=gen)
            t0 = time.perf_counter()
            out = stream.push(frames)
            latencies.append(time.perf_counter() - t0)
            assert len(out) == window
        lat = np.asarray(latencies)
        median = float(np.median(lat))
        print(
            f"stream_rl_rgb: stream-conv3d + BRT head, {args.size}x{args.size} RGB, clip {spec.clip_len}x"
            f"{spec.sample_rate} = {window} frames ({spec.clip_len} sampled), {args.clips} clips, {threads} thread(s), "
            f"load average {os.getloadavg()[0]:.1f}: clip latency median {median * 1e3:.0f} ms, p99 "
            f"{np.percentile(lat, 99) * 1e3:.0f} ms; {window / median:.0f} video frames/s "
            f"({spec.clip_len / median:.0f} sampled frames/s through the network) = "
            f"{window / median / args.fps:.1f}x real time at {args.fps:g} fps"
        )


if __name__ == "__main__":
    main()
