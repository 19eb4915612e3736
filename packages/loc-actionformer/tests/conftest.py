"""Shared helpers: tiny configs keep every test fast on a shared 2-core CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from synth_data import TINY_MODEL

from tal.core.config import read_yaml
from tal.loc_actionformer import ActionFormer, ActionFormerConfig
from tal.loc_actionformer.release.presets import release_config_path

# The test models are tiny: a second intra-op thread only adds synchronisation, which on a busy
# shared CPU turns into spinning.
torch.set_num_threads(1)

#: ``../shared`` beside the repository (reference listings and small real data), when present
SHARED = Path(__file__).resolve().parents[3].parent / "shared"
BIG = 10000.0


def tiny_config(**overrides: Any) -> ActionFormerConfig:
    """3 pyramid levels (strides 1, 2, 4), 32 channels, window 5, 64 steps, 3 classes: the network of
    :data:`synth_data.TINY_MODEL` with the default ``test_cfg``."""
    base = {k: v for k, v in TINY_MODEL.items() if k not in ("name", "test_cfg")}
    return ActionFormerConfig(**{**base, **overrides})


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def two_level_model(**train_cfg) -> ActionFormer:
    """Strides 1 and 2, regression ranges (0, 4) and (4, 10000), 16 steps, 2 classes."""
    cfg = tiny_config(
        num_classes=2,
        max_seq_len=16,
        backbone_arch=(2, 2, 1),
        regression_range=[(0, 4), (4, BIG)],
        n_mha_win_size=3,
        train_cfg=train_cfg,
    )
    return ActionFormer(cfg)


def release_config(name: str) -> dict[str, Any]:
    """The release config ``name`` shipped with the package, parsed (a fresh copy: keys as the file sets them)."""
    return read_yaml(release_config_path(name))
