"""Compiled kernels for an isolated install: the first-use build, then soft-NMS against the references and a C++ loop.

An isolated source install (``pip install ./packages/cuda-ops``) ships no library; its first CPU
call compiles one into ``$TAL_CACHE_DIR``. This script reproduces that in a fresh process with an
empty ``TAL_CACHE_DIR`` and ``TAL_OPS_JIT_ONLY=1`` (the library installed with the package is
ignored), and prints:

* the first-use build: import time, the first ``batched_nms`` call (compile + load + run) and the
  compile time alone;
* soft-NMS post-processing of 2,000 and 20,000 THUMOS-like candidates (ActionFormer's test_cfg,
  benchmarks/cuda_ops_nms.py) with the JIT-built library, the pure-torch references (what the
  isolated install ran before this change) and the single-threaded O(N^2) C++ loop compiled in the
  script, all in that one process, with the ratios.

Run: python benchmarks/cuda_ops_jit.py [--repeats 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(repeats: int, threads: int | None) -> None:
    start = time.perf_counter()
    import torch

    if threads is not None:
        torch.set_num_threads(threads)

    import tal.cuda_ops as ops
    from tal.cuda_ops import _backend

    imported = time.perf_counter() - start
    pending = _backend.EXT.pending
    start = time.perf_counter()
    ops.batched_nms(
        torch.tensor([[0.0, 1.0], [0.5, 1.5]]), torch.tensor([0.9, 0.8]), torch.tensor([0, 0]), 0.1, 0.001, 5
    )
    first = time.perf_counter() - start
    status = _backend.cpu_library()
    if not status.loaded:
        print(f"the first-use build did not produce a library: {status.reason}")
        return
    print(
        f"first-use build (fresh process, empty TAL_CACHE_DIR, nothing compiled at import: {pending}): "
        f"import {imported:.2f} s, first batched_nms call {first:.1f} s, "
        f"of which compiling {status.info['compile_seconds']:.1f} s",
        flush=True,
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; library {status.path}", flush=True)

    from cuda_ops_nms import compare_multiclass, compile_baseline

    baseline = compile_baseline()
    for n in (2000, 20000):
        print(compare_multiclass(baseline, n, repeats, name="JIT-built library"), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (1 keeps a busy shared machine from stalling barriers)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.repeats, args.threads)
        return
    with tempfile.TemporaryDirectory(prefix="tal-jit-bench-") as cache:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAL_OPS_")}
        env.update(TAL_CACHE_DIR=cache, TAL_OPS_JIT_ONLY="1")
        script = str(Path(__file__).resolve())
        command = [sys.executable, script, "--child", "--repeats", str(args.repeats)]
        if args.threads is not None:
            command += ["--threads", str(args.threads)]
        sys.exit(subprocess.call(command, env=env))


if __name__ == "__main__":
    main()
