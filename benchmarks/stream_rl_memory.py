"""SVTAS-RL streaming memory: resident set size from 1,000 to 100,000 frames of one stream (flat within 5%).

The GTEA preset model streams random 2048-d features pushed 997 frames at a time (not a multiple
of the 128-frame clip); the process's resident memory (``VmRSS``) is read after 1,000, 10,000 and
100,000 frames. The stream keeps one clip of sampled frames and the head's fixed-size state, so the
ratio RSS(100k) / RSS(1k) should be 1 (target: within 5%). Before each reading the allocator returns its
free pages to the system (``malloc_trim``, glibc), so the reading counts memory the process holds, not
the free lists glibc keeps after the first clips; ``--no-trim`` reads the raw RSS. As a contrast, the
same run reports how much the frames alone would take if a non-streaming model had to hold the whole video.

Usage: ``python benchmarks/stream_rl_memory.py [--frames 100000] [--threads N]``
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import time
from pathlib import Path

import torch


def trim() -> None:
    """Hand glibc's free pages back to the system (a no-op where glibc is absent)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-trim", action="store_true", help="read the raw RSS, free lists included")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from tal.stream_rl import StreamingSegmenter, build_model

    torch.manual_seed(0)
    model = build_model("gtea", input_dim=2048, num_classes=11).eval()
    stream = StreamingSegmenter(model)
    gen = torch.Generator().manual_seed(1)
    checkpoints = [c for c in (1_000, 10_000, args.frames) if c <= args.frames]
    readings: dict[int, float] = {}
    piece, pos, emitted = 997, 0, 0
    t0 = time.perf_counter()
    while pos < args.frames:
        n = min(piece, args.frames - pos)
        for c in checkpoints:  # read exactly at each checkpoint frame count
            if pos < c < pos + n:
                n = c - pos
                break
        emitted += len(stream.push(torch.randn(2048, n, generator=gen)))
        pos += n
        if pos in checkpoints:
            if not args.no_trim:
                gc.collect()
                trim()
            readings[pos] = rss_mb()
    emitted += len(stream.flush())
    assert emitted == args.frames
    first, last = readings[checkpoints[0]], readings[checkpoints[-1]]
    whole_video_mb = args.frames * 2048 * 4 / 2**20
    parts = ", ".join(f"{k:,} frames {v:.1f} MB" for k, v in readings.items())
    print(
        f"stream_rl_memory: GTEA preset, pieces of {piece} frames{'' if args.no_trim else ', trimmed'}: "
        f"RSS after {parts}; "
        f"ratio {checkpoints[-1]:,}/{checkpoints[0]:,} frames = {last / first:.3f}x (target within 5%); "
        f"holding the whole video's features would take {whole_video_mb:.0f} MB; wall {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
