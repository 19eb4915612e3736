"""The conformance suites catch broken components (they are tests that can fail)."""

from __future__ import annotations

from typing import Literal

import pytest
import torch
from conftest import FakeEntryPoint, make_plugin
from torch import nn

from tal.core import ComponentConfig
from tal.core.registry import load_registry
from tal.core.testing import BackboneConformance


class LeakyConfig(ComponentConfig):
    name: Literal["leaky"] = "leaky"
    input_dim: int = 4


class Leaky(nn.Module):
    """Ignores the mask: a global mean over time mixes padded steps into valid ones."""

    def __init__(self, cfg: LeakyConfig) -> None:
        super().__init__()
        self.out_channels = cfg.input_dim
        self.proj = nn.Conv1d(cfg.input_dim, cfg.input_dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.proj(x) + x.mean(dim=2, keepdim=True)


class WrongNameConfig(ComponentConfig):
    name: str = "loose"  # not a Literal
    input_dim: int = 4


class Unused(nn.Module):
    def __init__(self, cfg: WrongNameConfig) -> None:
        super().__init__()
        self.out_channels = 4
        self.used = nn.Conv1d(4, 4, 1)
        self.unused = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.used(x) * mask


def _registry():
    def hook(registry):
        registry.add_backbone("leaky", Leaky, config=LeakyConfig)
        registry.add_backbone("loose", Unused, config=WrongNameConfig)

    return load_registry([FakeEntryPoint("t", make_plugin("t", register_backbones=hook))], strict=True, disabled=[])


class LeakySuite(BackboneConformance):
    name = "leaky"

    def get_registry(self):
        return _registry()


class LooseSuite(BackboneConformance):
    name = "loose"

    def get_registry(self):
        return _registry()


def test_padding_leak_is_caught():
    LeakySuite().test_shape_contract()  # shapes are fine
    with pytest.raises(AssertionError):
        LeakySuite().test_padding_does_not_leak()


def test_non_literal_name_and_dead_parameters_are_caught():
    with pytest.raises(AssertionError, match="Literal"):
        LooseSuite().test_config_name_is_literal()
    with pytest.raises(AssertionError, match="unused"):
        LooseSuite().test_gradients_reach_every_parameter()
