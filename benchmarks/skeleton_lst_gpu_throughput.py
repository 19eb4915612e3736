"""LST-joint training throughput on a GPU: batch 64 NTU samples (3, 64, 25, 2), bf16 autocast.

Full-size NTU60 LST model; one step = forward, LST loss against fixed 512-d text features,
backward, SGD (Nesterov). Prints samples per second for fp32 and bf16, eager and ``torch.compile``.
Exits with a message (code 0) when no CUDA device is visible. Not yet measured on a GPU.
Usage: ``python benchmarks/skeleton_lst_gpu_throughput.py [--steps 20]``.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from tal.skeleton_lst import build_model
from tal.skeleton_lst.modeling.lst import lst_loss

BATCH = 64


def bench(steps: int, bf16: bool, compiled: bool) -> float:
    torch.manual_seed(0)
    model = build_model("lst", 60, "ntu", "joint").cuda().train()
    forward = torch.compile(model.forward_features) if compiled else model.forward_features
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(BATCH, 3, 64, 25, 2, device="cuda")
    labels = torch.randint(0, 60, (BATCH,), device="cuda")
    texts = [torch.randn(BATCH, 512, device="cuda") for _ in range(5)]
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()

    def step() -> None:
        with amp:
            out = forward(x)
            loss = lst_loss(out, labels, texts[0], texts[1:], 0.8)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return BATCH * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device visible: nothing measured (this script needs a GPU)")
        return
    print(f"device: {torch.cuda.get_device_name()}")
    for compiled in (False, True):
        for bf16 in (False, True):
            rate = bench(args.steps, bf16, compiled)
            mode = ("compiled " if compiled else "eager ") + ("bf16" if bf16 else "fp32")
            print(f"{mode}: {rate:.0f} samples/s (batch {BATCH})")


if __name__ == "__main__":
    main()
