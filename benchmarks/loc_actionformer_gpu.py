"""ActionFormer throughput on a GPU: training steps/s and inference videos/s for the THUMOS14 and ActivityNet presets.

Per preset: the full model of the release config, random features of its shapes (THUMOS14: batches
of 2 videos of 2304 x 2048-d steps; ActivityNet TSP: 16 x 768 x 512-d; ActivityNet I3D: 16 x 192 x
2048-d), one optimizer step = forward, backward, clipping, AdamW; inference = one video with
decoding and ``tal.cuda_ops.batched_nms``. Precision: fp32 and bf16 autocast. Exits with a message
(code 0) when no CUDA device is visible.

Usage: ``python benchmarks/loc_actionformer_gpu.py [--presets thumos_i3d anet_tsp anet_i3d] [--steps 20]``
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from typing import Any

import torch

SHAPES = {"thumos_i3d": (2, 2304), "anet_tsp": (16, 192), "anet_i3d": (16, 192)}  # batch size, max_seq_len


def build(name: str) -> Any:
    from tal.loc_actionformer import ActionFormer
    from tal.loc_actionformer.config import ActionFormerConfig
    from tal.loc_actionformer.release.presets import preset

    cfg = preset(name)["model"]
    cfg.pop("name")
    cfg["test_cfg"] = {**cfg["test_cfg"], "ext_score_file": None}  # no score file here: class-agnostic output
    torch.manual_seed(0)
    return ActionFormer(ActionFormerConfig(**cfg)).cuda()


def timed(fn: Any, n: int) -> float:
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n


def bench(name: str, steps: int, bf16: bool) -> None:
    model = build(name)
    batch_size, length = SHAPES[name]
    dim = model.config.input_dim if isinstance(model.config.input_dim, int) else sum(model.config.input_dim)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()
    feats = [torch.randn(dim, length, device="cuda") for _ in range(batch_size)]
    batch = {
        "features": feats,
        "segments": [torch.tensor([[10.0, 60.0], [100.0, 130.0]], device="cuda") for _ in feats],
        "labels": [torch.tensor([0, min(1, model.num_classes - 1)], device="cuda") for _ in feats],
    }
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with amp:
            loss = model(batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    model.train()
    t_step = timed(step, steps)
    model.eval()
    video = {"video_ids": ["v"], "features": [feats[0]], "fps": [30.0], "feat_stride": [4.0], "num_frames": [16.0]}
    video["duration"] = [1e8]

    def infer() -> None:
        with torch.inference_mode(), amp:
            model(video)

    t_inf = timed(infer, steps)
    prec = "bf16" if bf16 else "fp32"
    print(
        f"{name:10s} {prec}: train {1 / t_step:.2f} steps/s ({batch_size * length} steps of features per batch), "
        f"inference {1 / t_inf:.1f} videos/s (T={length})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device is visible: the GPU throughput benchmark did not run", file=sys.stderr)
        return 0
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    for name in args.presets:
        for bf16 in (False, True):
            bench(name, args.steps, bf16)
    return 0


if __name__ == "__main__":
    sys.exit(main())
