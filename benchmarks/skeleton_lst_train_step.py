"""LST-joint training step on NTU shapes (batch 16, 64 frames, 25 joints, 2 bodies) on the CPU: target >= 1.3x.

Fast path: the package's model (all subsets in one ``tal.cuda_ops.graph_aggregate`` call, fused
subset convolutions) under ``torch.compile``. Baseline: the same weights run by the release's
computation written plainly in fp32 eager mode (per-subset ``torch.einsum``, the test oracle in
``packages/skeleton-lst/tests/oracles``). One step = forward, the LST loss (CE + 0.8 x five KL
contrastive terms against fixed 512-d text features), backward, SGD (Nesterov) update. Both start
from the same weights; the logits of the first forward must agree within 1e-5 (relative to their
scale). Prints the median step times and the ratio. Run from a checkout:
``python benchmarks/skeleton_lst_train_step.py [--steps 8] [--no-compile] [--threads N]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "skeleton-lst" / "tests"))

from oracles.ctrgcn_einsum import lst_outputs

from tal.skeleton_lst import build_model
from tal.skeleton_lst.modeling.lst import LSTOutput, lst_loss

BATCH, FRAMES = 16, 64


def make_step(model, forward):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)

    def step(x, labels, glob, parts):
        logits, g, p = forward(x)
        out = LSTOutput(logits, g, model.logit_scale, p)
        loss = lst_loss(out, labels, glob, parts, 0.8)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return logits.detach()

    return step


def timed(step, inputs, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step(*inputs)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--no-compile", action="store_true", help="time the eager fast path instead")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    fast_model = build_model("lst", 60, "ntu", "joint")
    base_model = copy.deepcopy(fast_model)
    fast_model.train(), base_model.train()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, 3, FRAMES, 25, 2, generator=g)
    labels = torch.randint(0, 60, (BATCH,), generator=g)
    glob = torch.randn(BATCH, 512, generator=g)
    parts = [torch.randn(BATCH, 512, generator=g) for _ in range(4)]
    inputs = (x, labels, glob, parts)

    def fast_forward(inp):
        out = fast_model.forward_features(inp)
        return out.logits, out.global_feature, out.part_features

    forward = fast_forward if args.no_compile else torch.compile(fast_forward)
    fast_step = make_step(fast_model, forward)
    base_step = make_step(base_model, lambda inp: lst_outputs(base_model, inp))

    t0 = time.perf_counter()
    first_fast = fast_step(*inputs)  # compiles
    compile_s = time.perf_counter() - t0
    first_base = base_step(*inputs)
    scale = max(1.0, float(first_base.abs().max()))
    diff = float((first_fast - first_base).abs().max())
    fast_times = timed(fast_step, inputs, args.steps)
    base_times = timed(base_step, inputs, args.steps)
    fast_ms, base_ms = 1e3 * statistics.median(fast_times), 1e3 * statistics.median(base_times)
    mode = "eager" if args.no_compile else f"torch.compile (first step incl. compilation {compile_s:.0f} s)"
    print(f"threads={torch.get_num_threads()} LST joint NTU60 train step, batch {BATCH} x (3, {FRAMES}, 25, 2)")
    print(f"graph_aggregate + {mode}: {fast_ms:.0f} ms; plain fp32 eager einsum: {base_ms:.0f} ms")
    print(f"first-step logits: max |diff| = {diff:.2e} (scale {scale:.1f}, relative {diff / scale:.1e}; target 1e-5)")
    print(f"training-step ratio: {base_ms / fast_ms:.2f}x (target >= 1.3x)")


if __name__ == "__main__":
    main()
