"""Which implementation serves each op on each device, and the kernel that implements it.

:func:`kernel` is the single dispatch point: every public function and every registered
``torch.ops.tal_ops`` op runs ``kernel(op, device)(*args)``. It decides between the three
implementations of an op,

* ``cpu-ext``: the compiled C++ library (``torch.ops.tal_ops_ext``, CPU tensors),
* ``triton``: the Triton kernels (``tal.cuda_ops._triton``, CUDA tensors),
* ``reference``: the pure-torch references (``tal.cuda_ops._reference``, any device),

including the size limits of a compiled kernel (Triton NMS groups above ``MAX_GROUP`` go to the
reference), and binds the op's body (``tal.cuda_ops._composite``) to that implementation's
primitives. :func:`backend_info` reports the same decision, so what it says is what runs.

The C++ library is looked up at import (cheap: a few files and one ``dlopen``). When there is
none, the first CPU call that needs it compiles it into the user cache (``tal.cuda_ops._cpu.jit``,
one WARNING line) and loads it; where no compiler works, one WARNING line names the slowdown and
the fix, and the references run.

Environment:
  ``TAL_OPS_DISABLE_EXT=1``   never load the C++ library and never use Triton:
                              the pure-torch references run everywhere.
  ``TAL_OPS_DISABLE_TRITON=1`` references on CUDA tensors, C++ kernels on CPU.
  ``TAL_OPS_STRICT=1``        the C++ library must be there: compiled at import if needed,
                              :class:`ExtensionUnavailableError` if it cannot be (or, on a machine
                              with a CUDA device, if Triton is missing).
  ``TAL_OPS_NO_BUILD_EXT=1``  never compile: not at install (setup.py), not on first use.
  ``TAL_OPS_GRAPH_CPU=ext``   use the C++ kernel for graph_aggregate on CPU (default:
                              the batched-GEMM reference; see GRAPH_CPU_REASON).
  ``TAL_OPS_EXT_DIR``         extra folder searched first for a compiled library.
  ``TAL_OPS_JIT_ONLY=1``      ignore the library installed with the package (and TAL_OPS_EXT_DIR):
                              only the first-use cache counts (to test or refresh that path).
  ``TAL_CACHE_DIR``           root of the first-use build cache (default ``~/.cache/tal``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from . import _composite, _reference
from ._composite import NmsKernels
from ._cpu import jit as _jit
from ._cpu import library as _library

#: Public ops, in the order ``backend_info`` lists them.
OPS = ("segment_iou", "segment_iou_matched", "nms_1d", "soft_nms_1d", "batched_nms", "graph_aggregate")

#: The public op each kernel op (a ``torch.ops.tal_ops`` name) belongs to.
KERNEL_OPS = {
    "segment_iou": "segment_iou",
    "segment_iou_matched": "segment_iou_matched",
    "nms_1d": "nms_1d",
    "soft_nms_1d": "soft_nms_1d",
    "batched_nms": "batched_nms",
    "graph_aggregate_refined": "graph_aggregate",
    "graph_aggregate_refined_backward": "graph_aggregate",
    "graph_aggregate_shared": "graph_aggregate",
    "graph_aggregate_shared_backward": "graph_aggregate",
}

#: The primitive behind each graph kernel op (names of ``tal.cuda_ops._reference``).
_GRAPH_PRIMITIVES = {
    "graph_aggregate_refined": "graph_refined_fwd",
    "graph_aggregate_refined_backward": "graph_refined_bwd",
    "graph_aggregate_shared": "graph_shared_fwd",
    "graph_aggregate_shared_backward": "graph_shared_bwd",
}

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
DISABLE_TRITON = _flag("TAL_OPS_DISABLE_TRITON")
STRICT = _flag("TAL_OPS_STRICT")
JIT_ONLY = _flag("TAL_OPS_JIT_ONLY")
GRAPH_CPU_EXT = os.environ.get("TAL_OPS_GRAPH_CPU", "").strip().lower() == "ext"

#: Why graph_aggregate uses the pure-torch path on CPU by default.
GRAPH_CPU_REASON = (
    "pure-torch batched GEMM, measured faster than both torch.einsum and the C++ kernel at CTR-GCN shapes "
    "(benchmarks/cuda_ops_graph_aggregate.py; README, Performance); TAL_OPS_GRAPH_CPU=ext selects the C++ kernel"
)


def _find_library() -> _library.ExtStatus:
    """The compiled library if one is installed or cached (pending a first-use build otherwise)."""
    if DISABLE_EXT:
        return _library.ExtStatus(False, "disabled by TAL_OPS_DISABLE_EXT=1")
    status = _library.load_extension(_library.candidate_dirs(include_installed=not JIT_ONLY))
    if not status.loaded:
        status.pending = True
        status.reason = f"not compiled yet, compiled on the first CPU call that needs it ({status.reason})"
    return status


EXT = _find_library()
_EXT_LOCK = threading.Lock()


def cpu_library() -> _library.ExtStatus:
    """The C++ library's status, compiling it first if it is pending (the first CPU call that needs it)."""
    global EXT
    if EXT.pending:
        with _EXT_LOCK:
            if EXT.pending:
                status = _jit.first_use()
                status.skipped = EXT.skipped + status.skipped
                EXT = status
    return EXT


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


# ---------------------------------------------------------------- decision


def implementation(op: str, device: torch.device) -> str:
    """Which implementation (``cpu-ext``, ``triton`` or ``reference``) runs the public op ``op`` on ``device``."""
    if device.type == "cpu":
        if op == "graph_aggregate" and not GRAPH_CPU_EXT:
            return IMPL_REF
        return IMPL_EXT if cpu_library().loaded else IMPL_REF
    if device.type == "cuda":
        return IMPL_TRITON if TRITON.get() is not None else IMPL_REF
    return IMPL_REF


def choice(op: str, device_type: str, *, load: bool = True) -> BackendChoice:
    """The implementation of the public op ``op`` on ``device_type`` and the reason for it.

    ``load=False`` does not import Triton for the answer about ``"cuda"`` (it says what will happen).
    """
    if device_type == "cuda" and not load and TRITON.module is None and TRITON.error is None:
        return BackendChoice(IMPL_TRITON, "Triton kernel (triton is installed; compiled on first use)")
    impl = implementation(op, torch.device(device_type))
    if device_type == "cpu":
        if op == "graph_aggregate" and not GRAPH_CPU_EXT:
            return BackendChoice(impl, GRAPH_CPU_REASON)
        prefix = "C++ kernel" if impl == IMPL_EXT else "pure-torch reference"
        return BackendChoice(impl, f"{prefix}; {cpu_library().reason}")
    if device_type == "cuda":
        if impl == IMPL_REF:
            return BackendChoice(impl, f"pure-torch reference on the GPU; {TRITON.error}")
        where = (
            "" if torch.cuda.is_available() else "; no CUDA device is visible here, so it has not run in this process"
        )
        return BackendChoice(impl, f"Triton {TRITON.version} kernel, JIT-compiled for the GPU on first use{where}")
    return BackendChoice(impl, f"pure-torch reference (no compiled kernel for {device_type} tensors)")


# ------------------------------------------------------------------ kernels


def _primitives(impl: str) -> Any:
    """The namespace holding the primitives of ``impl`` (names of ``tal.cuda_ops._reference``)."""
    if impl == IMPL_EXT:
        return torch.ops.tal_ops_ext
    if impl == IMPL_TRITON:
        return TRITON.get()
    return _reference


def _with_group_limit(
    compiled: Callable[..., Any], fallback: Callable[..., Any], fits: Callable[[Tensor], bool]
) -> Callable[..., Any]:
    """A grouped primitive: ``compiled`` where every group ``fits``, ``fallback`` otherwise."""

    def run(segs: Tensor, second: Tensor, offsets: Tensor, *args: Any) -> Any:
        return (compiled if fits(offsets) else fallback)(segs, second, offsets, *args)

    return run


def nms_kernels(impl: str) -> NmsKernels:
    """The grouped NMS primitives of ``impl``, with its size limits applied."""
    if impl == IMPL_REF:
        return NmsKernels(IMPL_REF, _reference.soft_nms_grouped, _reference.hard_nms_grouped, _reference.seg_voting)
    prims = _primitives(impl)
    if impl == IMPL_TRITON:  # a program holds a group in registers: larger groups go to the reference
        return NmsKernels(
            IMPL_TRITON,
            _with_group_limit(prims.soft_nms_grouped, _reference.soft_nms_grouped, prims.fits),
            _with_group_limit(prims.hard_nms_grouped, _reference.hard_nms_grouped, prims.fits),
            prims.seg_voting,
        )
    return NmsKernels(impl, prims.soft_nms_grouped, prims.hard_nms_grouped, prims.seg_voting)


@functools.cache
def bound_kernel(op: str, impl: str) -> Callable[..., Any]:
    """The kernel of ``op`` (a ``torch.ops.tal_ops`` name) on implementation ``impl``.

    :func:`kernel` picks ``impl`` for a device; tests and benchmarks call this to pin one.
    """
    if op in ("nms_1d", "soft_nms_1d", "batched_nms"):
        return functools.partial(getattr(_composite, op), kernels=nms_kernels(impl))
    primitive_name = _GRAPH_PRIMITIVES.get(op, op)
    if impl == IMPL_REF:
        return getattr(_reference, primitive_name)
    primitive = getattr(_primitives(impl), primitive_name)
    if op in ("segment_iou", "segment_iou_matched"):
        return functools.partial(_composite.segment_iou, primitive=primitive)
    body = _composite.graph_backward if op.endswith("_backward") else _composite.graph_forward
    return functools.partial(body, primitive=primitive, keeps_half=impl == IMPL_TRITON)


def kernel(op: str, device: torch.device) -> Callable[..., Any]:
    """The function computing ``torch.ops.tal_ops.<op>`` for tensors on ``device`` (same arguments)."""
    return bound_kernel(op, implementation(KERNEL_OPS[op], device))


# ------------------------------------------------------------------- report


def backend_info() -> dict[str, dict[str, BackendChoice]]:
    """Per op and device (``"cpu"``, ``"cuda"``), which implementation runs and why.

    Importing Triton happens here if it has not happened yet, so the answer for
    ``"cuda"`` is the one the dispatch will act on.
    """
    return {op: {"cpu": choice(op, "cpu"), "cuda": choice(op, "cuda")} for op in OPS}


def format_backend_info() -> str:
    """:func:`backend_info` as a table, one line per op and device."""
    lines = [f"tal.cuda_ops backends (torch {torch.__version__})"]
    for op, per_device in backend_info().items():
        for device, chosen in per_device.items():
            lines.append(f"  {op:<20} {device:<5} {chosen.impl:<10} {chosen.reason}")
    return "\n".join(lines)


def startup_report() -> None:
    """At import, under ``TAL_OPS_STRICT=1``: make sure the compiled backends are there, or raise."""
    if DISABLE_EXT or not STRICT:
        return
    problems = []
    if not cpu_library().loaded:
        problems.append(EXT.reason)
    if TRITON.error is not None and torch.cuda.is_available():
        problems.append(f"Triton unavailable: {TRITON.error}")
    if problems:
        raise ExtensionUnavailableError(
            "TAL_OPS_STRICT=1 and a compiled backend is unavailable: " + "; ".join(problems)
        )
