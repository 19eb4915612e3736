"""Shared helpers for tal-core tests."""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@dataclass
class FakeDist:
    name: str
    version: str


class FakeEntryPoint:
    """Stands in for an importlib.metadata EntryPoint: ``load()`` returns a module or raises."""

    def __init__(self, name: str, target: Any, dist: str = "fake-dist", version: str = "1.0") -> None:
        self.name = name
        self._target = target
        self.dist = FakeDist(dist, version)

    def load(self) -> Any:
        if isinstance(self._target, BaseException):
            raise self._target
        return self._target


def make_plugin(name: str, **hooks: Any) -> types.ModuleType:
    """A module object holding the given hook functions (marked as tal hookimpls)."""
    from tal.core import hookimpl

    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        fn.__name__ = hook
        setattr(module, hook, hookimpl(fn))
    return module


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA}")
    return SHARED_DATA
