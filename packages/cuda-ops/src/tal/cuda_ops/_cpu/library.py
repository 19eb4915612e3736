"""Finding, vetting and loading the compiled CPU kernels (``torch.ops.tal_ops_ext``).

A library is only loaded when its build record (``_build_info.json``, written
next to it by ``setup.py`` or by :func:`build_extension`) says it was built
from these sources (same kernels version) for an ABI this torch can load:

* ``stable``: written against torch's stable C ABI with
  ``TORCH_TARGET_VERSION`` = 2.10, so it loads into any torch >= 2.10,
  whatever torch it was compiled with.

Anything else (no record, another kernels version, a torch older than the
target, a library that fails to load or lacks an op) is skipped with the
reason kept for :func:`tal.cuda_ops.backend_info`; the pure-torch references
run instead. Nothing here may raise.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import buildcfg

#: Ops the library must provide (namespace ``tal_ops_ext``).
EXT_OPS = (
    "kernels_version",
    "segment_iou",
    "segment_iou_matched",
    "soft_nms_grouped",
    "hard_nms_grouped",
    "seg_voting",
    "graph_refined_fwd",
    "graph_refined_bwd",
    "graph_shared_fwd",
    "graph_shared_bwd",
)

_LIB_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")


@dataclass
class ExtStatus:
    """Outcome of the extension search."""

    loaded: bool
    reason: str
    path: str | None = None
    info: dict = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def torch_version_tuple(version: str | None = None) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version or torch.__version__)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def package_dir() -> Path:
    return Path(__file__).resolve().parent


def cache_dir() -> Path:
    """Where :func:`build_extension` puts its JIT build (one folder per torch/Python)."""
    root = os.environ.get("TAL_OPS_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "tal-cuda-ops")
    tag = f"torch{torch.__version__}-py{sys.version_info.major}{sys.version_info.minor}-{platform.machine()}"
    return Path(root) / re.sub(r"[^A-Za-z0-9_.+-]", "_", tag)


def find_library(directory: Path) -> Path | None:
    if not directory.is_dir():
        return None
    for name in buildcfg.LIBRARY_NAMES:
        for path in sorted(directory.glob(name + "*")):
            if path.suffix in _LIB_SUFFIXES and path.is_file():
                return path
    return None


def read_build_info(directory: Path) -> dict | None:
    try:
        return json.loads((directory / buildcfg.BUILD_INFO).read_text())
    except (OSError, ValueError):
        return None


def vet(info: dict | None) -> str | None:
    """Why a library with this build record cannot be loaded here (None if it can)."""
    if info is None:
        return f"no readable {buildcfg.BUILD_INFO} next to it (unknown build)"
    if info.get("kernels_version") != buildcfg.KERNELS_VERSION:
        return (
            f"it was built from other sources (kernels version {info.get('kernels_version')!r}, "
            f"this package needs {buildcfg.KERNELS_VERSION})"
        )
    abi = info.get("abi")
    if abi == "stable":
        need = tuple(info.get("min_torch", buildcfg.STABLE_TARGET))
        if torch_version_tuple() < need:
            return f"it uses the stable ABI of torch >= {need[0]}.{need[1]} but torch {torch.__version__} is installed"
        return None
    return f"unknown ABI {abi!r} in its build record"


def _already_loaded() -> bool:
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key("tal_ops_ext::segment_iou", "CPU")
    except Exception:
        return False


def _load(path: Path) -> str | None:
    """Load one vetted library; returns an error reason or None."""
    if _already_loaded():
        return "another copy of the kernels is already loaded in this process"
    try:
        torch.ops.load_library(str(path))
    except Exception as exc:  # OSError (undefined symbol, wrong arch), RuntimeError (registration)
        return f"loading failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    try:
        version = int(torch.ops.tal_ops_ext.kernels_version())
    except Exception as exc:
        return f"loaded, but kernels_version() failed: {exc}"
    if version != buildcfg.KERNELS_VERSION:
        return f"loaded, but it reports kernels version {version} (need {buildcfg.KERNELS_VERSION})"
    missing = [name for name in EXT_OPS if not hasattr(torch.ops.tal_ops_ext, name)]
    if missing:
        return f"loaded, but it lacks ops {missing}"
    return None


def candidate_dirs() -> list[Path]:
    dirs = [package_dir()]
    extra = os.environ.get("TAL_OPS_EXT_DIR")
    if extra:
        dirs.insert(0, Path(extra))
    dirs.append(cache_dir())
    return dirs


def load_extension(dirs: list[Path] | None = None) -> ExtStatus:
    """Load the first acceptable library found in ``dirs``; never raises."""
    skipped: list[tuple[str, str]] = []
    try:
        for directory in dirs if dirs is not None else candidate_dirs():
            lib = find_library(directory)
            if lib is None:
                continue
            info = read_build_info(directory)
            reason = vet(info)
            if reason is None:
                reason = _load(lib)
            if reason is None:
                return ExtStatus(True, f"loaded {lib.name} ({_describe(info)})", str(lib), info or {}, skipped)
            skipped.append((str(lib), reason))
    except Exception as exc:  # pragma: no cover - defensive: import must never fail
        skipped.append(("<search>", f"{type(exc).__name__}: {exc}"))
    if skipped:
        detail = "; ".join(f"{path}: {why}" for path, why in skipped)
        return ExtStatus(False, f"no usable compiled kernels ({detail})", None, {}, skipped)
    return ExtStatus(
        False,
        "tal-cuda-ops was installed without its compiled kernels (no compiler or no torch at build time)",
        None,
        {},
        skipped,
    )


def _describe(info: dict | None) -> str:
    if not info:
        return "unknown build"
    need = info.get("min_torch", [0, 0])
    return (
        f"{info.get('abi')} ABI, loads in torch>={need[0]}.{need[1]}, compiled with torch "
        f"{info.get('built_with_torch')}, {info.get('origin', 'setup.py')}"
    )


def build_info_record(origin: str) -> dict:
    return {
        "abi": "stable",
        "min_torch": list(buildcfg.STABLE_TARGET),
        "kernels_version": buildcfg.KERNELS_VERSION,
        "built_with_torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "origin": origin,
        "flags": buildcfg.compile_args(),
    }


def build_extension(directory: str | os.PathLike | None = None, verbose: bool = False) -> Path:
    """Compile the CPU kernels just-in-time into ``directory`` (default: :func:`cache_dir`).

    Needs a C++ compiler and ninja. The compilation runs in a subprocess (so a
    library already loaded here is not disturbed); the next ``import
    tal.cuda_ops`` picks the result up. Returns the library path.
    """
    if torch_version_tuple() < buildcfg.STABLE_TARGET:
        major, minor = buildcfg.STABLE_TARGET
        raise RuntimeError(f"compiling the kernels needs torch >= {major}.{minor} (found {torch.__version__})")
    out = Path(directory) if directory is not None else cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    script = textwrap.dedent(
        f"""
        from torch.utils.cpp_extension import load
        load(name="tal_cuda_ops_kernels", sources={buildcfg.source_paths()!r},
             extra_cflags={buildcfg.compile_args()!r}, build_directory={str(out)!r},
             is_python_module=False, verbose={bool(verbose)!r})
        """
    )
    env = dict(os.environ, TAL_OPS_DISABLE_EXT="1")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=not verbose, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or "")[-3000:] if not verbose else ""
        raise RuntimeError(f"building the tal-cuda-ops kernels failed (exit {proc.returncode}):\n{tail}")
    lib = find_library(out)
    if lib is None:
        raise RuntimeError(f"the build finished but no library was found in {out}")
    (out / buildcfg.BUILD_INFO).write_text(json.dumps(build_info_record("jit build"), indent=2))
    return lib
