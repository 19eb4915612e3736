"""Shared helpers: tiny models keep every test fast on a shared 2-core CPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

settings.register_profile("tal", deadline=None, derandomize=True, max_examples=25)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tal"))

SHARED = Path(__file__).resolve().parents[3].parent / "shared"  # ../shared beside the repository
BREAKFAST = SHARED / "data" / "segmentation" / "breakfast"


def tiny_model(**fields: Any) -> Any:
    """An ``svtas-rl`` model small enough for unit tests: 6 input channels, 5 classes, clips of 8 × 2 frames."""
    from tal.stream_rl import build_model

    head = {"num_f_maps": 16, "encoder_layers": 3, "decoder_layers": 2, "num_decoders": 2, "state_len": 8}
    head.update(fields.pop("head", {}))
    base: dict[str, Any] = {"clip_len": 8, "sample_rate": 2, "head": head}
    base.update(fields)
    input_dim = base.pop("input_dim", 6)
    num_classes = base.pop("num_classes", 5)
    return build_model("gtea", input_dim=input_dim, num_classes=num_classes, **base)


# The models under test are tiny: on a shared 2-core machine a second intra-op thread costs more in
# synchronisation than it saves.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
