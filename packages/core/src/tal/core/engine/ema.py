"""Exponential moving average of a model's weights."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """A frozen copy of ``model`` whose floating-point parameters and buffers track
    ``ema = decay * ema + (1 - decay) * current`` after every :meth:`update`; integer buffers
    (e.g. BatchNorm's ``num_batches_tracked``) are copied.

    Args:
        model: the model to track (unwrapped, not DDP).
        decay: weight of the running average, in ``(0, 1)``.
        device: where the copy lives; by default the device of ``model``.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, device: torch.device | str | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        if device is not None:
            self.module.to(device)
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend ``model``'s current state into the average."""
        current = model.state_dict()
        for name, ema_value in self.module.state_dict().items():
            value = current[name].detach().to(ema_value.device)
            if ema_value.is_floating_point():
                ema_value.mul_(self.decay).add_(value.to(ema_value.dtype), alpha=1.0 - self.decay)
            else:
                ema_value.copy_(value)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        """``{"module": averaged state_dict, "decay": float, "updates": int}``."""
        return {"module": self.module.state_dict(), "decay": self.decay, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.decay = float(state.get("decay", self.decay))
        self.updates = int(state.get("updates", 0))
