"""LST inference of one NTU RGB+D sample (2 bodies, 64 frames) on the CPU: target under 50 ms.

The release-compatible NTU60 LST joint model (full size, eval mode, random weights with real
BatchNorm statistics) on ``(1, 3, 64, 25, 2)`` under ``torch.inference_mode``: ``model(x)`` runs tal's
CPU inference path (``modeling/ctrgcn_inference.py``). The baseline, measured in the same run on the same
weights and input, is the release's computation written plainly (per-subset ``torch.einsum``, the test
oracle in ``packages/skeleton-lst/tests/oracles``); the modules' own eval forward (``cpu_inference =
False``, the previous eager path) is printed for reference. Prints the median and minimum latency of
each, the ratio of the medians, the largest logit difference, and a machine check (the GFLOP/s of one
fp32 768x256x800 product) so that runs on a shared machine can be compared. With ``--compile``, also
``torch.compile(model, options={"freezing": True})`` (it compiles the modules' path: the inference path
is eager code on prepared weights) and its compile time. Run from a checkout:
``python benchmarks/skeleton_lst_inference_cpu.py [--repeats 60] [--threads N] [--compile]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "skeleton-lst" / "tests"))

from oracles.ctrgcn_einsum import lst_outputs

from tal.skeleton_lst import build_model


def times_ms(fn, repeats: int) -> tuple[float, float]:
    """(median, minimum) over ``repeats`` calls after 3 warm-up calls; the minimum is the least disturbed
    by other processes on a shared machine."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), 1e3 * min(times)


def machine_gflops() -> float:
    """GFLOP/s of a 768x256 by 256x800 fp32 product (the size of the model's largest convolution), median of 50."""
    a, b = torch.randn(768, 256), torch.randn(256, 800)
    for _ in range(5):
        a @ b
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * 768 * 256 * 800 / statistics.median(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (freezing) of the model")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("lst", 60, "ntu", "joint")
    with torch.no_grad():  # BatchNorm statistics of real activations
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = None
        model.train()
        model(torch.randn(8, 3, 64, 25, 2))
    model.eval()
    x = torch.randn(1, 3, 64, 25, 2)
    with torch.inference_mode():
        assert model.uses_cpu_inference(x)
        gflops = machine_gflops()
        fast, fast_min = times_ms(lambda: model(x), args.repeats)
        base, base_min = times_ms(lambda: lst_outputs(model, x)[0], args.repeats)
        diff = float((model(x) - lst_outputs(model, x)[0]).abs().max())
        model.cpu_inference = False
        modules, modules_min = times_ms(lambda: model(x), args.repeats)
        model.cpu_inference = True
    print(f"threads={torch.get_num_threads()} one NTU sample (1, 3, 64, 25, 2), LST joint NTU60, eval")
    print(f"machine check: fp32 768x256x800 product at {gflops:.0f} GFLOP/s")
    print(f"tal-skeleton-lst: median {fast:.1f} ms, min {fast_min:.1f} ms (target < 50 ms)")
    print(f"release computation (einsum): median {base:.1f} ms, min {base_min:.1f} ms")
    print(f"modules' own eval forward (cpu_inference=False): median {modules:.1f} ms, min {modules_min:.1f} ms")
    print(f"inference ratio (medians): {base / fast:.2f}x the einsum baseline; max |logit diff| = {diff:.2e}")
    if not args.compile:
        return
    model.cpu_inference = False
    compiled = torch.compile(model, options={"freezing": True})
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = compiled(x)
        compile_s = time.perf_counter() - t0
        comp, comp_min = times_ms(lambda: compiled(x), args.repeats)
        cdiff = float((out - model(x)).abs().max())
    print(
        f"torch.compile (freezing) of the modules: median {comp:.1f} ms, min {comp_min:.1f} ms ({base / comp:.2f}x "
        f"the einsum baseline); first call (compiling) {compile_s:.0f} s; max |logit diff| vs eager = {cdiff:.2e}"
    )


if __name__ == "__main__":
    main()
