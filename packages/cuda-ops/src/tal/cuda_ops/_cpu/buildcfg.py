"""Build configuration of the C++ library, shared by ``setup.py`` and the JIT builder.

This module must stay importable on its own (``setup.py`` loads it by path,
without torch and without importing the package).
"""

from __future__ import annotations

import sys
from pathlib import Path

#: Version of the C++ op schemas/semantics. The loader refuses a compiled
#: library reporting another version (a stale build from an older checkout).
KERNELS_VERSION = 1

#: The library is written against torch's stable ABI; this is the oldest torch
#: whose stable C shim it may call (passed as TORCH_TARGET_VERSION).
STABLE_TARGET = (2, 10)

#: File names: the library built by setup.py is ``_kernels*.so``; the JIT
#: builder produces ``tal_cuda_ops_kernels.so``. Each sits next to BUILD_INFO.
LIBRARY_NAMES = ("_kernels", "tal_cuda_ops_kernels")
BUILD_INFO = "_build_info.json"

CSRC_DIR = Path(__file__).resolve().parents[1] / "csrc"
#: Translation units, relative to ``csrc/``: one per op family (``ops/``), each including the shared
#: binding helpers (``common.h``) and its torch-free kernels (``kernels/``).
SOURCES = ("ops/library.cpp", "ops/segment_iou.cpp", "ops/nms.cpp", "ops/seg_voting.cpp", "ops/graph_aggregate.cpp")


def target_version_macro() -> str:
    major, minor = STABLE_TARGET
    return f"0x{major:02x}{minor:02x}000000000000"


def compile_args() -> list[str]:
    """C++ flags: optimised, but no fast-math and no FMA contraction (exactness)."""
    defines = [
        f"-DTORCH_TARGET_VERSION={target_version_macro()}",
        f"-DTAL_KERNELS_VERSION={KERNELS_VERSION}",
    ]
    if sys.platform == "win32":
        return ["/O2", "/fp:precise", *[d.replace("-D", "/D", 1) for d in defines]]
    # -fno-trapping-math lets GCC vectorize the selects around divisions (it changes no result).
    return ["-O3", "-ffp-contract=off", "-fno-finite-math-only", "-fno-trapping-math", *defines]


def source_paths(csrc_dir: Path | None = None) -> list[str]:
    base = csrc_dir or CSRC_DIR
    return [str(base / name) for name in SOURCES]
