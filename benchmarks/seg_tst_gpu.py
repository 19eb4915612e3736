"""DiffAct + TST throughput on a CUDA GPU (not yet measured: no GPU on the project's machines).

* inference: the ``seg-tst/breakfast`` model (random weights) on one video of T frames, 25 DDIM steps,
  fp32 and bf16 autocast: frames per second, peak allocated memory;
* training: one TST step on the frozen DiffAct (backbone in train mode as the release, unseeded DDIM)
  and one DiffAct stage-1 step: seconds per step.

Without a CUDA device it says so and exits 0.

    python benchmarks/seg_tst_gpu.py [--frames 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch


def timed(fn, repeats: int) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("seg_tst_gpu: no CUDA device here; nothing measured (the README says: not yet measured on a GPU)")
        return
    from tal.seg_tst import BackboneWithTST, DiffAct, DiffActAdapter, TSTRefiner

    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = BackboneWithTST(
        DiffActAdapter(DiffAct.from_preset("breakfast", 48)), TSTRefiner(n_classes=48, feat_dim=768, inner_dim=128)
    ).to(dev)
    model.eval()
    x = torch.randn(1, 2048, args.frames, device=dev)
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        torch.cuda.reset_peak_memory_stats()

        def infer(dtype: torch.dtype | None = dtype) -> None:
            amp = torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None)
            with torch.inference_mode(), amp:
                out, _ = model.refine(x)
                out.hardmax_labels()

        sec = timed(infer, args.repeats)
        peak = torch.cuda.max_memory_allocated() / 2**20
        print(f"inference {name} T={args.frames}: {sec:.3f} s ({args.frames / sec:.0f} frames/s), peak {peak:.0f} MB")
    model.train()
    model.backbone_ready = True
    labels = (torch.arange(args.frames, device=dev) // 500) % 48
    batch = {
        "features": x,
        "mask": torch.ones(1, 1, args.frames, dtype=torch.bool, device=dev),
        "labels": labels[None],
        "targets": [labels],
        "video_ids": ["v"],
    }
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-5)

    def tst_step() -> None:
        opt.zero_grad()
        model(batch)["loss"].backward()
        opt.step()

    print(f"TST training step (frozen DiffAct, T={args.frames}): {timed(tst_step, args.repeats):.3f} s")
    diffact = DiffAct.from_preset("breakfast", 48).to(dev).train()
    opt2 = torch.optim.Adam(diffact.parameters(), lr=1e-4)
    bnd = torch.zeros(args.frames, device=dev)

    def diffact_step() -> None:
        opt2.zero_grad()
        diffact.training_losses(x, labels, bnd, rng=random.Random(0)).total.backward()
        opt2.step()

    print(f"DiffAct training step (T={args.frames}): {timed(diffact_step, args.repeats):.3f} s")


if __name__ == "__main__":
    main()
