"""One training step of a tiny ActionFormer on a fixed global batch of 4 videos, split over the processes
``torchrun`` starts (run by ``test_ddp.py``; not a test module itself).

Usage: ``torchrun --standalone --nproc_per_node N ddp_positives_worker.py OUT.json`` (N divides 4).
Rank 0 writes the loss normaliser, the losses averaged over processes (as the Trainer reports them),
and the parameters after one SGD step.
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from tal.core.engine.distributed import all_reduce_mean, init_distributed, shutdown_distributed
from tal.loc_actionformer import ActionFormer, ActionFormerConfig

GLOBAL_BATCH = 4


def global_batch() -> dict:
    gen = torch.Generator().manual_seed(7)
    feats = [torch.randn(16, 64, generator=gen) for _ in range(GLOBAL_BATCH)]
    segments = [
        torch.tensor([[3.0, 12.0], [30.0, 55.0]]),
        torch.tensor([[10.0, 13.0]]),
        torch.tensor([[1.0, 40.0], [42.0, 50.0], [52.0, 60.0]]),
        torch.tensor([[20.0, 28.0]]),
    ]
    labels = [torch.tensor([0, 2]), torch.tensor([1]), torch.tensor([2, 0, 1]), torch.tensor([1])]
    return {"features": feats, "segments": segments, "labels": labels}


def main(out: str) -> None:
    ctx = init_distributed("cpu")
    torch.manual_seed(0)
    config = ActionFormerConfig(
        input_dim=16,
        num_classes=3,
        max_seq_len=64,
        backbone_arch=(2, 2, 2),
        regression_range=[(0, 4), (4, 8), (8, 10000)],
        n_mha_win_size=5,
        embd_dim=32,
        fpn_dim=32,
        head_dim=32,
        max_buffer_len_factor=2.0,
        train_cfg={"init_loss_norm": 50, "droppath": 0.0, "dropout": 0.0},
    )
    model = ActionFormer(config).train()
    net = DistributedDataParallel(model) if ctx.distributed else model
    per_rank = GLOBAL_BATCH // ctx.world_size
    batch = {k: v[ctx.rank * per_rank : (ctx.rank + 1) * per_rank] for k, v in global_batch().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    optimizer.zero_grad()
    losses = net(batch)
    losses["loss"].backward()
    optimizer.step()
    means = all_reduce_mean({k: float(v.detach()) for k, v in losses.items()}, ctx)
    if ctx.is_main:
        params = {k: v.detach().flatten()[:8].tolist() for k, v in model.named_parameters()}
        result = {"world_size": ctx.world_size, "loss_normalizer": model.loss_normalizer, **means, "params": params}
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(result, fh)
    if ctx.distributed:
        dist.barrier()
    shutdown_distributed(ctx)


if __name__ == "__main__":
    main(sys.argv[1])
