"""Model EMA arithmetic and state round-trip; seeding and RNG state capture."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from tal.core.engine.ema import ModelEMA
from tal.core.engine.seed import get_rng_state, seed_everything, set_rng_state


def test_ema_update_by_hand() -> None:
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
    ema = ModelEMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 4.0]]))
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.tensor([[1.2, 2.2]]))  # 0.9*[1,2] + 0.1*[3,4]
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[5.0, 6.0]]))
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.tensor([[1.58, 2.58]]))  # 0.9*[1.2,2.2] + 0.1*[5,6]
    assert ema.updates == 2
    assert not ema.module.weight.requires_grad
    assert model.weight.tolist() == [[5.0, 6.0]]  # the model is untouched


def test_ema_copies_integer_buffers_and_round_trips() -> None:
    model = nn.BatchNorm1d(3)
    ema = ModelEMA(model, decay=0.5)
    model.train()
    model(torch.randn(4, 3))
    ema.update(model)
    assert int(ema.module.num_batches_tracked) == 1
    assert torch.allclose(ema.module.running_mean, 0.5 * model.running_mean)  # 0.5*0 + 0.5*new
    other = ModelEMA(nn.BatchNorm1d(3), decay=0.1)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.5 and other.updates == 1
    assert torch.equal(other.module.running_mean, ema.module.running_mean)


def test_ema_rejects_bad_decay() -> None:
    with pytest.raises(ValueError):
        ModelEMA(nn.Linear(1, 1), decay=1.0)


def test_rng_state_round_trip_is_weights_only_safe(tmp_path) -> None:
    seed_everything(3)
    state = get_rng_state()
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(99)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
