"""Shared helpers: tiny configs keep every test fast on a shared 2-core CPU."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tal.loc_actionformer import ActionFormerConfig


def tiny_config(**overrides: Any) -> ActionFormerConfig:
    """3 pyramid levels (strides 1, 2, 4), 32 channels, window 5, 64 steps, 3 classes."""
    base: dict[str, Any] = {
        "input_dim": 16,
        "num_classes": 3,
        "max_seq_len": 64,
        "backbone_arch": (2, 2, 2),
        "regression_range": [(0, 4), (4, 8), (8, 10000)],
        "n_head": 4,
        "n_mha_win_size": 5,
        "embd_dim": 32,
        "fpn_dim": 32,
        "head_dim": 32,
        "max_buffer_len_factor": 2.0,
    }
    base.update(overrides)
    return ActionFormerConfig(**base)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
