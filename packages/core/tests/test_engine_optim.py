"""Optimizer parameter groups and learning-rate schedules."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from tal.core.config import OptimizerConfig, SchedulerConfig
from tal.core.engine.optim import build_optimizer, build_scheduler, param_groups, split_decay
from tal.core.errors import ConfigError


class MyLayerNorm(nn.Module):
    """A custom norm like ActionFormer's own LayerNorm (recognised by its class name)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, c, 1))
        self.bias = nn.Parameter(torch.zeros(1, c, 1))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3)
        self.fc = nn.Linear(8, 2)
        self.ln = nn.LayerNorm(8)
        self.bn = nn.BatchNorm1d(8)
        self.gn = nn.GroupNorm(2, 8)
        self.my_norm = MyLayerNorm(8)
        self.emb = nn.Embedding(5, 8)
        self.rel_pe = nn.Parameter(torch.zeros(3, 8))
        self.scale = nn.Parameter(torch.ones(1))
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_split_decay_follows_actionformer_rules() -> None:
    decay, no_decay = split_decay(Net())
    assert sorted(decay) == ["conv.weight", "fc.weight"]
    assert sorted(no_decay) == sorted(
        [
            "conv.bias",
            "fc.bias",
            "ln.weight",
            "ln.bias",
            "bn.weight",
            "bn.bias",
            "gn.weight",
            "gn.bias",
            "my_norm.weight",
            "my_norm.bias",
            "emb.weight",
            "rel_pe",
            "scale",
        ]
    )


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_build_optimizer_groups_and_type(name: str) -> None:
    model = Net()
    opt = build_optimizer(model, OptimizerConfig(name=name, lr=0.1, weight_decay=0.05, momentum=0.5))
    expected = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}[name]
    assert type(opt) is expected
    by_decay = {g["weight_decay"]: g for g in opt.param_groups}
    assert set(by_decay) == {0.05, 0.0}
    ids = {id(p) for p in by_decay[0.05]["params"]}
    assert ids == {id(model.conv.weight), id(model.fc.weight)}
    all_ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert id(model.frozen.weight) not in all_ids
    assert all(g["lr"] == 0.1 for g in opt.param_groups)
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.5


def test_model_param_groups_hook_wins() -> None:
    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(2, 2)
            self.b = nn.Linear(2, 2)

        def param_groups(self, weight_decay: float) -> list[dict]:
            return [
                {"params": list(self.a.parameters()), "weight_decay": weight_decay * 2},
                {"params": list(self.b.parameters()), "weight_decay": 0.0, "lr": 0.5},
            ]

    model = Custom()
    assert param_groups(model, 0.1)[0]["weight_decay"] == 0.2
    opt = build_optimizer(model, OptimizerConfig(lr=0.01, weight_decay=0.1))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.2, 0.0]
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5]


def _lrs(config: SchedulerConfig, epochs: int, iters: int, lr: float = 1.0) -> list[float]:
    """Learning rate used by optimizer step t, for every t."""
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = build_scheduler(opt, config, epochs, iters, lr)
    out = []
    for _ in range(epochs * iters):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    out.append(opt.param_groups[0]["lr"])  # after the last step
    return out


def test_warmup_is_linear_then_cosine_hits_midpoint_and_floor() -> None:
    # 10 epochs x 10 iterations, 2 warmup epochs (20 iterations), then 80 cosine iterations.
    lrs = _lrs(SchedulerConfig(name="cosine", warmup_epochs=2, eta_min=0.1), epochs=10, iters=10, lr=2.0)
    assert lrs[0] == 0.0
    assert lrs[5] == pytest.approx(2.0 * 5 / 20)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[20] == pytest.approx(2.0)  # warmup done: the base lr
    assert lrs[60] == pytest.approx((2.0 + 0.1) / 2)  # cosine midpoint
    assert lrs[40] == pytest.approx(0.1 + (2.0 - 0.1) * 0.5 * (1 + math.cos(math.pi * 20 / 80)))
    assert lrs[100] == pytest.approx(0.1)  # the floor at the end
    assert all(a >= b for a, b in itertools.pairwise(lrs[20:]))


def test_fractional_warmup_epochs() -> None:
    lrs = _lrs(SchedulerConfig(name="constant", warmup_epochs=0.5), epochs=2, iters=10)
    assert lrs[:6] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert lrs[19] == 1.0


def test_multistep_drops_at_milestone_epochs() -> None:
    lrs = _lrs(SchedulerConfig(name="multistep", milestones=[3, 6], gamma=0.1), epochs=8, iters=5)
    assert lrs[14] == pytest.approx(1.0)
    assert lrs[15] == pytest.approx(0.1)
    assert lrs[29] == pytest.approx(0.1)
    assert lrs[30] == pytest.approx(0.01)


def test_warmup_longer_than_run_is_a_config_error() -> None:
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    with pytest.raises(ConfigError, match="warmup_epochs"):
        build_scheduler(opt, SchedulerConfig(warmup_epochs=5), epochs=3, iters_per_epoch=2, base_lr=1.0)


def test_inclusive_warmup_reaches_the_base_lr_at_its_last_step() -> None:
    """ActionFormer's release ramp: lr * t / (W - 1) from 0, so step W - 1 already runs at the base lr."""
    lrs = _lrs(SchedulerConfig(name="constant", warmup_epochs=1, warmup_inclusive=True), epochs=2, iters=5, lr=2.0)
    assert lrs[:6] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
    one = _lrs(SchedulerConfig(name="constant", warmup_epochs=1, warmup_inclusive=True), epochs=2, iters=1, lr=2.0)
    assert one[:2] == pytest.approx([0.0, 2.0])  # a one-step warmup stays at 0 for that step


def test_milestones_can_count_from_the_end_of_warmup() -> None:
    """With 2 warmup epochs and milestone 3 the drop comes at epoch 5 (release), not at epoch 3."""
    cfg = SchedulerConfig(name="multistep", warmup_epochs=2, milestones=[3], gamma=0.1, milestones_after_warmup=True)
    lrs = _lrs(cfg, epochs=8, iters=5)
    assert lrs[24] == pytest.approx(1.0) and lrs[25] == pytest.approx(0.1)
    plain = _lrs(cfg.model_copy(update={"milestones_after_warmup": False}), epochs=8, iters=5)
    assert plain[14] == pytest.approx(1.0) and plain[15] == pytest.approx(0.1)


def test_lr_scale_groups_and_nesterov() -> None:
    class TwoPart(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Linear(2, 2)
            self.head = nn.Linear(2, 2)

        def param_groups(self, weight_decay: float):
            return [
                {"params": list(self.backbone.parameters()), "lr_scale": 0.02},
                {"params": list(self.head.parameters())},
            ]

    opt = build_optimizer(TwoPart(), OptimizerConfig(name="sgd", lr=0.5, nesterov=True))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.5])
    assert all(g["nesterov"] for g in opt.param_groups)
    sched = build_scheduler(opt, SchedulerConfig(name="cosine"), epochs=1, iters_per_epoch=4, base_lr=0.5)
    opt.step()
    sched.step()
    ratio = opt.param_groups[0]["lr"] / opt.param_groups[1]["lr"]
    assert ratio == pytest.approx(0.02)  # the schedule scales both groups alike


def test_per_epoch_warmup_as_ctrgcn() -> None:
    """CTR-GCN / LST: lr * (e + 1) / 5 during the first 5 epochs, constant within an epoch."""
    cfg = SchedulerConfig(name="multistep", warmup_epochs=5, warmup_per_epoch=True, milestones=[7], gamma=0.1)
    lrs = _lrs(cfg, epochs=9, iters=4, lr=0.1)
    assert lrs[0:4] == pytest.approx([0.02] * 4)
    assert lrs[4:8] == pytest.approx([0.04] * 4)
    assert lrs[16:20] == pytest.approx([0.1] * 4)
    assert lrs[20] == pytest.approx(0.1) and lrs[27] == pytest.approx(0.1) and lrs[28] == pytest.approx(0.01)


def test_eta_min_per_group_scaled_or_absolute() -> None:
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    for absolute, floors in ((False, [0.1, 0.01]), (True, [0.1, 0.1])):
        opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=1.0)
        cfg = SchedulerConfig(name="cosine", eta_min=0.1, eta_min_absolute=absolute)
        sched = build_scheduler(opt, cfg, epochs=1, iters_per_epoch=10, base_lr=1.0)
        for _ in range(10):
            opt.step()
            sched.step()
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(floors)
