"""DiffAct training step (stage 1, the GTEA preset) on the CPU: ``torch.compile`` (and bf16 autocast) vs fp32 eager.

One step = DiffAct's six losses on one video of T frames (encoder, a noised label sequence through the
decoder, soft labels, boundary loss), backward and an Adam step, with the same seed, condition type and
inputs in every configuration (dropout off so that they compute the same function):

* ``eager``: fp32, no compilation;
* ``compiled``: ``torch.compile`` of the encoder and the decoder (the loss glue stays eager);
* ``compiled-bf16``: the same under ``torch.autocast("cpu", torch.bfloat16)``.

Reported: warm median step time per configuration (compilation is timed separately), the ratio to
eager, and the relative difference of the total loss and of the gradient norm to eager's (whether bf16
keeps the accuracy).

    python benchmarks/seg_tst_train_step.py [--frames 1500] [--steps 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from contextlib import AbstractContextManager

import numpy as np
import torch

from tal.seg_tst import DiffAct
from tal.seg_tst.config import DiffActConfig
from tal.seg_tst.modeling.frame_losses import boundary_targets


def make_inputs(frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2048, frames, generator=gen)
    cuts = np.sort(np.random.default_rng(0).choice(np.arange(20, frames - 20), size=9, replace=False))
    labels = np.zeros(frames, np.int64)
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, frames], strict=True)):
        labels[a:b] = i % 11
    return x, torch.from_numpy(labels), torch.from_numpy(boundary_targets(labels, 1.0)).float()


def run(config: str, frames: int, steps: int) -> tuple[list[float], float, list[float], list[float]]:
    torch.manual_seed(0)
    # Dropout off, so that every configuration computes the same function and the loss / gradient
    # differences measure precision only (compiled code draws its dropout masks from another generator).
    cfg = DiffActConfig.preset("gtea", 11)
    enc = cfg.encoder_params.model_copy(
        update={"normal_dropout_rate": 0.0, "channel_dropout_rate": 0.0, "temporal_dropout_rate": 0.0}
    )
    dec = cfg.decoder_params.model_copy(update={"dropout_rate": 0.0})
    model = DiffAct(cfg.model_copy(update={"encoder_params": enc, "decoder_params": dec})).train()
    if config.startswith("compiled"):
        model.encoder = torch.compile(model.encoder)  # type: ignore[assignment]
        model.decoder = torch.compile(model.decoder)  # type: ignore[assignment]
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, weight_decay=1e-6)
    x, labels, bnd = make_inputs(frames)
    weights = torch.ones(11)
    times, losses, norms = [], [], []
    compile_s = 0.0
    for step in range(steps + 1):
        torch.manual_seed(100 + step)
        bf16 = config.endswith("bf16")
        ctx: AbstractContextManager = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
        t0 = time.perf_counter()
        with ctx:
            out = model.training_losses(x, labels, bnd, weights, rng=random.Random(step))
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        opt.step()
        dt = time.perf_counter() - t0
        if step == 0:
            compile_s = dt  # first step: compilation (and warm-up)
        else:
            times.append(dt)
        losses.append(float(out.total.detach()))
        norms.append(float(norm))
    return times, compile_s, losses, norms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1500)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {c: run(c, args.frames, args.steps) for c in ("eager", "compiled", "compiled-bf16")}
    base = statistics.median(results["eager"][0])
    ref_loss, ref_norm = results["eager"][2], results["eager"][3]
    for config, (times, compile_s, losses, norms) in results.items():
        med = statistics.median(times)
        dl = max(abs(a - b) / abs(b) for a, b in zip(losses[:1], ref_loss[:1], strict=True))
        dn = max(abs(a - b) / abs(b) for a, b in zip(norms[:1], ref_norm[:1], strict=True))
        print(
            f"DiffAct gtea train step T={args.frames}: {config} {med:.3f} s/step vs fp32 eager {base:.3f}: "
            f"{base / med:.2f}x (first step {compile_s:.1f} s; first-step loss rel. diff {dl:.1e}, "
            f"grad-norm rel. diff {dn:.1e})"
        )


if __name__ == "__main__":
    main()
