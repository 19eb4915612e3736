"""Shared test helpers: paths to ../shared and a fixed seed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))  # tests import the oracles as `oracles.*`

SHARED = Path(__file__).resolve().parents[4] / "shared"  # the repository's ../shared
REFERENCE = SHARED / "reference" / "skeleton"


def need_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not here (the repository's ../shared folder)")
    return path


# one thread: these small tensors gain little from a second one, and on a shared machine two threads
# contending with other processes made steps several times slower
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
