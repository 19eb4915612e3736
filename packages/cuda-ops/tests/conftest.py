"""Test configuration for tal-cuda-ops.

Triton kernels are tested on CPU tensors under Triton's interpreter. The
interpreter is chosen when a kernel is decorated, so TRITON_INTERPRET must be
set before any kernel module (or torch._dynamo, which imports triton) is
imported: that happens here, first. On a machine with a CUDA device the
variable is left alone so the real GPU tests compile for the device; run the
suite a second time with TRITON_INTERPRET=1 to also run the interpreter tests.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
from hypothesis import HealthCheck, settings

# Default: deterministic examples (CI never flakes); HYPOTHESIS_PROFILE=thorough explores at random.
settings.register_profile(
    "tal",
    deadline=None,
    max_examples=40,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("tal"), max_examples=400, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tal"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one)")
    config.addinivalue_line("markers", "slow: compiles C++ or pip-installs (tens of seconds; part of the default run)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ext_loaded() -> bool:
    from tal.cuda_ops import _backend

    return _backend.cpu_library().loaded


@pytest.fixture(scope="session")
def need_ext(ext_loaded: bool) -> None:
    if not ext_loaded:
        pytest.skip("compiled kernels not loaded (see test_backend.py::test_extension_loaded)")


@pytest.fixture(scope="module", params=["reference", "cpu-ext"])
def kernels(request: pytest.FixtureRequest, ext_loaded: bool):
    """The grouped NMS primitives of each CPU implementation, as the dispatch serves them (test_triton.py: Triton)."""
    from tal.cuda_ops import _backend

    if request.param == "cpu-ext" and not ext_loaded:
        pytest.skip("compiled kernels not loaded")
    return _backend.nms_kernels(request.param)
