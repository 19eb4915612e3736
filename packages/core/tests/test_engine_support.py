"""Tiny synthetic components shared by the engine tests (and by the DDP worker script).

``ToySegDataset`` is a frame-labelling task a per-frame MLP can learn; ``FrameAccuracy`` is an
order-independent, mergeable metric with integer state. The tests at the bottom check them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from tal.core import baselines
from tal.core.config import ComponentConfig, TrainConfig
from tal.core.registry import Registry


class ToySegDataset:
    """``num_videos`` videos of ``channels x length`` features whose frame label is the arg-max of the
    first ``num_classes`` channels (plus noise).

    ``augment="torch"`` adds noise from torch's global generator in ``__getitem__``; ``"numpy"`` from
    NumPy's (so exact resume depends on RNG state being restored / workers being seeded).
    ``variable_length`` makes video ``i`` ``length - i % 3`` steps long (exercises padding).
    """

    def __init__(
        self,
        num_videos: int = 8,
        channels: int = 8,
        length: int = 12,
        num_classes: int = 3,
        seed: int = 0,
        augment: str | None = None,
        variable_length: bool = False,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(num_videos):
            t = length - (i % 3 if variable_length else 0)
            labels = torch.randint(0, num_classes, (t,), generator=g)
            feats = 0.5 * torch.randn(channels, t, generator=g)
            feats[labels, torch.arange(t)] += 2.0
            self.items.append({"video_id": f"vid{seed}_{i:03d}", "features": feats, "labels": labels})
        self.augment = augment

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.items[index])
        if self.augment == "torch":
            item["features"] = item["features"] + 0.05 * torch.randn(item["features"].shape)
        elif self.augment == "numpy":
            noise = np.random.standard_normal(tuple(item["features"].shape)).astype(np.float32)
            item["features"] = item["features"] + 0.05 * torch.from_numpy(noise)
        return item

    def collate(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        t_max = max(it["features"].shape[1] for it in items)
        c = items[0]["features"].shape[0]
        features = torch.zeros(len(items), c, t_max)
        mask = torch.zeros(len(items), 1, t_max, dtype=torch.bool)
        labels = torch.full((len(items), t_max), -100, dtype=torch.int64)
        for i, it in enumerate(items):
            t = it["features"].shape[1]
            features[i, :, :t] = it["features"]
            mask[i, 0, :t] = True
            labels[i, :t] = it["labels"]
        return {
            "video_ids": [it["video_id"] for it in items],
            "features": features,
            "mask": mask,
            "labels": labels,
            "targets": [it["labels"] for it in items],
        }


class FrameAccuracy:
    """Correct/total frame counts (integers, so merging in any order is exact)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0
        self.videos: list[str] = []

    def update(self, predictions: Sequence[Any], targets: Sequence[Any], video_ids: Sequence[str]) -> None:
        for pred, target, vid in zip(predictions, targets, video_ids, strict=True):
            assert pred.shape == target.shape, (vid, pred.shape, target.shape)
            self.correct += int((pred == target).sum())
            self.total += int(target.numel())
            self.videos.append(vid)

    def merge(self, other: FrameAccuracy) -> None:
        self.correct += other.correct
        self.total += other.total
        self.videos += other.videos

    def compute(self) -> dict[str, Any]:
        return {
            "acc": self.correct / max(1, self.total),
            "correct": self.correct,
            "total": self.total,
            "videos": len(self.videos),
        }


class ToySegConfig(ComponentConfig):
    name: Literal["toy-seg"] = "toy-seg"
    num_videos: int = Field(8, ge=1)
    channels: int = 8
    length: int = 12
    num_classes: int = 3
    seed: int = 0


class FrameAccConfig(ComponentConfig):
    name: Literal["frame-acc"] = "frame-acc"


def make_registry() -> Registry:
    """A fresh registry with core's ``frame-mlp`` plus the toy dataset and metric."""
    reg = Registry()
    baselines.register(reg)
    reg.add_dataset(
        "toy-seg",
        lambda c: ToySegDataset(c.num_videos, c.channels, c.length, c.num_classes, c.seed),
        config=ToySegConfig,
    )
    reg.add_metric("frame-acc", lambda c: FrameAccuracy(), config=FrameAccConfig)
    return reg


def ddp_run(out_dir: Path, per_rank_batch: int) -> None:
    """Train a tiny model (rank-count independent settings) and save what each rank saw.

    Writes ``out_dir/rank{R}.pt`` with the gradients seen by every optimizer step (after DDP's
    all-reduce and clipping), the final parameters and the final metrics.
    """
    from tal.core.engine import Trainer, init_distributed, shutdown_distributed

    ctx = init_distributed("cpu")
    try:
        torch.manual_seed(0)
        model = baselines.FrameMLP(input_dim=8, num_classes=3, hidden_dim=16)
        config = TrainConfig(
            epochs=2,
            batch_size=per_rank_batch,
            eval_batch_size=2,
            optimizer={"name": "adamw", "lr": 0.01, "weight_decay": 0.01},
            scheduler={"name": "cosine", "warmup_epochs": 0.5},
            clip_grad_norm=5.0,
            ema={"enabled": True, "decay": 0.9},
            progress=False,
        )
        trainer = Trainer(
            model,
            ToySegDataset(num_videos=8, seed=0),
            ToySegDataset(num_videos=5, seed=1),
            FrameAccuracy(),
            config,
            out_dir / "run",
            dist=ctx,
        )
        grads: list[list[torch.Tensor]] = []
        assert trainer.optimizer is not None
        trainer.optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: grads.append([p.grad.detach().clone() for p in trainer.model.parameters()])
        )
        metrics = trainer.fit()
        torch.save(
            {
                "grads": grads,
                "params": {k: v.clone() for k, v in trainer.model.state_dict().items()},
                "metrics": metrics,
                "world_size": ctx.world_size,
                "steps": trainer.global_step,
            },
            out_dir / f"rank{ctx.rank}.pt",
        )
    finally:
        shutdown_distributed(ctx)


if __name__ == "__main__":  # python test_engine_support.py OUT_DIR PER_RANK_BATCH (run by torchrun)
    ddp_run(Path(sys.argv[1]), int(sys.argv[2]))


# -- checks of the helpers themselves ------------------------------------------------------------
def test_toy_dataset_collate_pads_with_ignore_index() -> None:
    ds = ToySegDataset(num_videos=3, length=10, variable_length=True)
    batch = ds.collate([ds[0], ds[1], ds[2]])
    assert batch["features"].shape == (3, 8, 10)
    assert batch["mask"].sum(dim=(1, 2)).tolist() == [10, 9, 8]
    assert (batch["labels"][2, 8:] == -100).all()
    assert [t.shape[0] for t in batch["targets"]] == [10, 9, 8]


def test_frame_accuracy_merge_equals_single_pass() -> None:
    preds = [torch.tensor([0, 1, 2]), torch.tensor([1, 1]), torch.tensor([2])]
    targets = [torch.tensor([0, 1, 1]), torch.tensor([1, 0]), torch.tensor([2])]
    whole = FrameAccuracy()
    whole.update(preds, targets, ["a", "b", "c"])
    a, b = FrameAccuracy(), FrameAccuracy()
    a.update(preds[:1], targets[:1], ["a"])
    b.update(preds[1:], targets[1:], ["b", "c"])
    a.merge(b)
    assert a.compute() == whole.compute() == {"acc": 4 / 6, "correct": 4, "total": 6, "videos": 3}
