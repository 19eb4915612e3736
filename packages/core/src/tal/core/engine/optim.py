"""Optimizers and per-iteration learning-rate schedules built from :class:`~tal.core.config.TrainConfig`.

Weight decay follows ActionFormer's ``make_optimizer`` (itself from minGPT): weights of linear and
convolution layers decay; biases, normalization weights, embeddings, learnable scales and relative
positional encodings do not. A model can override the split with a ``param_groups(weight_decay)``
method returning ``torch.optim`` parameter-group dicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from tal.core.config import OptimizerConfig, SchedulerConfig
from tal.core.errors import ConfigError

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
_EMBEDDING_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)
_NO_DECAY_SUFFIXES = ("bias", "rel_pe", "pos_embd", "pos_embed", "pos_emb", "scale")


def _is_norm(module: nn.Module) -> bool:
    # Also custom norms such as ActionFormer's own ``LayerNorm`` class.
    return isinstance(module, _NORM_TYPES) or type(module).__name__.endswith("Norm")


def split_decay(model: nn.Module) -> tuple[list[str], list[str]]:
    """Names of trainable parameters that get weight decay and those that do not.

    No decay: biases, parameters of normalization layers and embeddings, 0-/1-D parameters (scales,
    gains) and names ending in ``rel_pe``/``pos_embd``/``pos_embed``/``pos_emb``/``scale``. Everything
    else (weights of linear/conv layers, other >= 2-D tensors) decays.
    """
    decay: list[str] = []
    no_decay: list[str] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{module_name}.{param_name}" if module_name else param_name
            skip = (
                param_name.endswith(_NO_DECAY_SUFFIXES)
                or _is_norm(module)
                or isinstance(module, _EMBEDDING_TYPES)
                or param.ndim <= 1
            )
            (no_decay if skip else decay).append(full)
    return decay, no_decay


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim``: the model's own ``param_groups(weight_decay)`` if it has
    one, otherwise a decayed group and a ``weight_decay=0`` group (see :func:`split_decay`)."""
    hook = getattr(model, "param_groups", None)
    if callable(hook):
        groups = list(hook(weight_decay))
        for i, g in enumerate(groups):
            if not isinstance(g, dict) or "params" not in g:
                raise ConfigError(f"{type(model).__name__}.param_groups(): group {i} must be a dict with 'params'")
        return groups
    params = dict(model.named_parameters())
    decay, no_decay = split_decay(model)
    groups = [
        {"params": [params[n] for n in decay], "weight_decay": weight_decay, "names": decay},
        {"params": [params[n] for n in no_decay], "weight_decay": 0.0, "names": no_decay},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD (with ``config.momentum`` and ``config.nesterov``) over :func:`param_groups`.

    A group with an ``lr_scale`` entry (and no ``lr`` of its own) trains at ``config.lr * lr_scale``
    (e.g. a fine-tuned backbone at a fiftieth of the head's rate); the schedule scales every group's
    rate by the same factor.
    """
    groups = param_groups(model, config.weight_decay)
    if not any(g["params"] for g in groups):
        raise ConfigError(f"{type(model).__name__} has no trainable parameters")
    for i, g in enumerate(groups):
        scale = g.get("lr_scale")
        if scale is not None and "lr" not in g:
            if not (isinstance(scale, (int, float)) and scale > 0):
                raise ConfigError(
                    f"{type(model).__name__}.param_groups(): group {i} lr_scale must be > 0, got {scale!r}"
                )
            g["lr"] = config.lr * float(scale)
    if config.name == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    if config.name == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    if config.name == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.nesterov
        )
    raise ConfigError(f"train.optimizer.name: unknown optimizer {config.name!r}; allowed: adamw, adam, sgd")


class LrFactor:
    """Multiplier of the base learning rate at optimizer step ``t`` (0-based), for :class:`LambdaLR`.

    * warmup (``t < warmup_iters``): ``t / warmup_iters``, a linear ramp from 0 that reaches 1 at
      ``warmup_iters``; with ``warmup_epoch_iters`` (per-epoch warmup) ``(e + 1) / warmup_epochs`` in
      epoch ``e`` of the warmup; with ``warmup_inclusive`` ``t / (warmup_iters - 1)``, which reaches 1 at the
      last warmup step (0 throughout a one-step warmup);
    * ``cosine``: ``m + (1 - m) * (1 + cos(pi * p)) / 2`` with ``p = (t - warmup) / (total - warmup)``
      clipped to ``[0, 1]`` and ``m = eta_min / lr``;
    * ``multistep``: ``gamma ** (number of milestone iterations <= t)``, or ``<= t - warmup_iters``
      with ``milestones_after_warmup``;
    * ``constant``: 1.

    Holds only plain numbers so ``LambdaLR.state_dict()`` saves it with ``weights_only`` checkpoints.
    """

    def __init__(
        self,
        kind: str,
        total_iters: int,
        warmup_iters: int = 0,
        min_factor: float = 0.0,
        milestones: Sequence[int] = (),
        gamma: float = 0.1,
        warmup_inclusive: bool = False,
        milestones_after_warmup: bool = False,
        warmup_epoch_iters: int = 0,
    ) -> None:
        self.kind = kind
        self.total_iters = int(total_iters)
        self.warmup_iters = int(warmup_iters)
        self.min_factor = float(min_factor)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        self.warmup_inclusive = bool(warmup_inclusive)
        self.milestones_after_warmup = bool(milestones_after_warmup)
        self.warmup_epoch_iters = int(warmup_epoch_iters)

    def __call__(self, t: int) -> float:
        if t < self.warmup_iters and self.warmup_epoch_iters > 0:
            epochs = self.warmup_iters / self.warmup_epoch_iters
            return (t // self.warmup_epoch_iters + 1) / epochs
        if t < self.warmup_iters:
            if self.warmup_inclusive:
                return t / (self.warmup_iters - 1) if self.warmup_iters > 1 else 0.0
            return t / self.warmup_iters
        if self.kind == "cosine":
            span = max(1, self.total_iters - self.warmup_iters)
            progress = min(1.0, max(0.0, (t - self.warmup_iters) / span))
            return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.kind == "multistep":
            since = t - self.warmup_iters if self.milestones_after_warmup else t
            return self.gamma ** sum(1 for m in self.milestones if since >= m)
        return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    config: SchedulerConfig,
    epochs: int,
    iters_per_epoch: int,
    base_lr: float,
) -> LambdaLR:
    """A :class:`LambdaLR` stepped once per optimizer step (see :class:`LrFactor`).

    ``epochs`` is the whole run, warmup included; ``warmup_epochs`` and ``milestones`` (in epochs)
    are converted to iterations with ``iters_per_epoch``. ``eta_min`` is an absolute learning rate
    for a group whose lr is ``base_lr``; groups with their own lr scale it proportionally, or, with
    ``eta_min_absolute``, every group ends at ``eta_min`` (torch's ``CosineAnnealingLR``).
    """
    if iters_per_epoch < 1:
        raise ConfigError("the training set yields no batches (is it empty?)")
    total = epochs * iters_per_epoch
    warmup = round(config.warmup_epochs * iters_per_epoch)
    if warmup > total:
        raise ConfigError(
            f"train.scheduler.warmup_epochs: {config.warmup_epochs} is longer than train.epochs ({epochs})"
        )

    def factor(group_lr: float) -> LrFactor:
        return LrFactor(
            config.name,
            total_iters=total,
            warmup_iters=warmup,
            min_factor=config.eta_min / group_lr,
            milestones=[m * iters_per_epoch for m in config.milestones],
            gamma=config.gamma,
            warmup_inclusive=config.warmup_inclusive,
            milestones_after_warmup=config.milestones_after_warmup,
            warmup_epoch_iters=iters_per_epoch if config.warmup_per_epoch else 0,
        )

    if config.eta_min_absolute:
        return LambdaLR(optimizer, lr_lambda=[factor(float(g["lr"])) for g in optimizer.param_groups])
    return LambdaLR(optimizer, lr_lambda=factor(base_lr))
