"""Which implementation serves each op on each device, and why.

The decision is made once per process (extension at import, Triton on first
use) and is the single source for both the dispatch in the op modules and
:func:`backend_info`, so what ``backend_info`` reports is what runs.

Environment:
  ``TAL_OPS_DISABLE_EXT=1``   never load the C++ library and never use Triton:
                              the pure-torch references run everywhere.
  ``TAL_OPS_DISABLE_TRITON=1`` references on CUDA tensors, C++ kernels on CPU.
  ``TAL_OPS_STRICT=1``        a missing/unusable C++ library (or, on a machine
                              with a CUDA device, a missing Triton) raises
                              :class:`ExtensionUnavailableError` at import.
  ``TAL_OPS_GRAPH_CPU=ext``   use the C++ kernel for graph_aggregate on CPU (default:
                              the batched-GEMM reference, measured faster; see GRAPH_CPU_REASON).
  ``TAL_OPS_EXT_DIR``         extra folder searched first for a compiled library.
  ``TAL_OPS_CACHE_DIR``       root of the JIT build cache (see ``build_extension``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from . import _ext

#: Public ops, in the order ``backend_info`` lists them.
OPS = ("segment_iou", "segment_iou_matched", "nms_1d", "soft_nms_1d", "batched_nms", "graph_aggregate")

IMPL_TRITON = "triton"
IMPL_EXT = "cpu-ext"
IMPL_REF = "reference"


class ExtensionUnavailableError(RuntimeError):
    """Raised at import under ``TAL_OPS_STRICT=1`` when a compiled backend is missing."""


@dataclass(frozen=True)
class BackendChoice:
    """One entry of :func:`backend_info`: the implementation and the reason for it."""

    impl: str
    reason: str

    def __str__(self) -> str:
        return f"{self.impl} ({self.reason})"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


DISABLE_EXT = _flag("TAL_OPS_DISABLE_EXT")
GRAPH_CPU_EXT = os.environ.get("TAL_OPS_GRAPH_CPU", "").strip().lower() == "ext"

#: Why graph_aggregate uses the pure-torch path on CPU by default (measured by
#: benchmarks/cuda_ops_graph_aggregate.py on the 2-core dev machine, forward +
#: backward at CTR-GCN shapes: the C++ kernel runs at 0.56-0.75x the speed of
#: torch.einsum, the batched-GEMM reference at 1.07-1.50x).
GRAPH_CPU_REASON = (
    "pure-torch batched GEMM (MKL), measured 1.07-1.50x the speed of torch.einsum at CTR-GCN shapes while the C++ "
    "kernel reaches 0.56-0.75x (benchmarks/cuda_ops_graph_aggregate.py); TAL_OPS_GRAPH_CPU=ext selects the C++ kernel"
)
DISABLE_TRITON = _flag("TAL_OPS_DISABLE_TRITON")
STRICT = _flag("TAL_OPS_STRICT")

if DISABLE_EXT:
    EXT = _ext.ExtStatus(False, "disabled by TAL_OPS_DISABLE_EXT=1")
else:
    EXT = _ext.load_extension()


class _TritonState:
    """Lazily imported Triton kernels (``tal.cuda_ops._triton``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.module: Any = None
        self.error: str | None = None
        self.version: str | None = None
        if DISABLE_EXT:
            self.error = "disabled by TAL_OPS_DISABLE_EXT=1"
        elif DISABLE_TRITON:
            self.error = "disabled by TAL_OPS_DISABLE_TRITON=1"
        elif importlib.util.find_spec("triton") is None:
            self.error = "triton is not installed (pip install 'tal-cuda-ops[triton]')"

    def get(self) -> Any:
        """The kernel package, importing it on first call; None if unavailable."""
        if self.module is not None or self.error is not None:
            return self.module
        with self._lock:
            if self.module is None and self.error is None:
                try:
                    triton = importlib.import_module("triton")
                    self.version = getattr(triton, "__version__", "?")
                    self.module = importlib.import_module("tal.cuda_ops._triton")
                except Exception as exc:
                    self.error = f"importing triton failed: {type(exc).__name__}: {exc}"
                    warnings.warn(
                        f"tal.cuda_ops: {self.error}; CUDA tensors use the pure-torch references",
                        RuntimeWarning,
                        stacklevel=3,
                    )
        return self.module


TRITON = _TritonState()


def cpu_choice(op: str) -> BackendChoice:
    if op == "graph_aggregate" and not GRAPH_CPU_EXT:
        return BackendChoice(IMPL_REF, GRAPH_CPU_REASON)
    if EXT.loaded:
        return BackendChoice(IMPL_EXT, f"C++ kernel; {EXT.reason}")
    return BackendChoice(IMPL_REF, f"pure-torch reference; {EXT.reason}")


def cuda_choice(op: str, *, load: bool = False) -> BackendChoice:
    module = TRITON.get() if load else TRITON.module
    if module is None and TRITON.error is None and not load:
        # Not imported yet: say what will happen without paying for the import.
        return BackendChoice(IMPL_TRITON, "Triton kernel (triton is installed; compiled on first use)")
    if module is None:
        return BackendChoice(IMPL_REF, f"pure-torch reference on the GPU; {TRITON.error}")
    where = "" if torch.cuda.is_available() else "; no CUDA device is visible in this process, so it has not run here"
    return BackendChoice(IMPL_TRITON, f"Triton {TRITON.version} kernel, JIT-compiled for the GPU on first use{where}")


def use_ext(op: str) -> bool:
    """Whether CPU tensors of ``op`` go to the C++ kernel (what ``cpu_choice`` reports)."""
    return cpu_choice(op).impl == IMPL_EXT


def triton_module() -> Any:
    """Triton kernels for CUDA tensors, or None (then the reference runs)."""
    return TRITON.get()


def backend_info() -> dict[str, dict[str, BackendChoice]]:
    """Per op and device (``"cpu"``, ``"cuda"``), which implementation runs and why.

    Importing Triton happens here if it has not happened yet, so the answer for
    ``"cuda"`` is the one the dispatch will act on.
    """
    TRITON.get()
    return {op: {"cpu": cpu_choice(op), "cuda": cuda_choice(op, load=True)} for op in OPS}


def format_backend_info() -> str:
    lines = [f"tal.cuda_ops backends (torch {torch.__version__})"]
    for op, per_device in backend_info().items():
        for device, choice in per_device.items():
            lines.append(f"  {op:<20} {device:<5} {choice.impl:<10} {choice.reason}")
    return "\n".join(lines)


def _startup_report() -> None:
    if DISABLE_EXT:
        return
    problems = []
    if not EXT.loaded:
        problems.append(EXT.reason)
    if STRICT:
        if TRITON.error is not None and torch.cuda.is_available():
            problems.append(f"Triton unavailable: {TRITON.error}")
        if problems:
            raise ExtensionUnavailableError(
                "TAL_OPS_STRICT=1 and a compiled backend is unavailable: " + "; ".join(problems)
            )
    if not EXT.loaded:
        warnings.warn(
            f"tal.cuda_ops: using the pure-torch reference implementations on CPU because {EXT.reason}. "
            "Reinstall with `pip install --no-build-isolation tal-cuda-ops` (needs a C++ compiler), "
            "or run `python -m tal.cuda_ops build` to compile the kernels into a cache folder.",
            RuntimeWarning,
            stacklevel=4,
        )
