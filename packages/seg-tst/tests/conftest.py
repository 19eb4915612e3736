"""Shared helpers: where ../shared is, listings of the release's state dicts, tiny model configs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
SHARED = Path(__file__).resolve().parents[3].parent / "shared"  # the checkout's sibling folder
REFERENCE = SHARED / "reference" / "segmentation"
BREAKFAST = SHARED / "data" / "segmentation" / "breakfast"

if str(TESTS) not in sys.path:  # the oracles are test code, imported as a top-level package
    sys.path.insert(0, str(TESTS))


def read_listing(name: str) -> tuple[list[tuple[str, tuple[int, ...]]], dict[str, int]]:
    """``key<TAB>shape`` lines of a reference listing and its ``# name<TAB>value`` totals."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"{path} not found (the shared reference folder is not next to the repository)")
    rows: list[tuple[str, tuple[int, ...]]] = []
    totals: dict[str, int] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            parts = line[1:].strip().split("\t")
            if len(parts) == 2 and parts[1].isdigit():
                totals[parts[0]] = int(parts[1])
            continue
        key, shape = line.split("\t")
        rows.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows, totals


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
