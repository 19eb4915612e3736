"""Finding, vetting and loading the compiled CPU kernels (``torch.ops.tal_ops_ext``).

Places searched, in order: ``$TAL_OPS_EXT_DIR``; the package itself (the library ``setup.py``
builds into a wheel or an install); the first-use build cache (:func:`jit_dir`, filled by
:mod:`tal.cuda_ops._cpu.jit`). A library is only loaded when its build record
(``_build_info.json``, written next to it) says it was built from these sources (same kernels
version) for an ABI this torch can load:

* ``stable``: written against torch's stable C ABI with
  ``TORCH_TARGET_VERSION`` = 2.10, so it loads into any torch >= 2.10,
  whatever torch it was compiled with.

Anything else (no record, another kernels version, a torch older than the
target, a library that fails to load or lacks an op) is skipped with the
reason kept for :func:`tal.cuda_ops.backend_info`. Nothing here may raise.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    """Outcome of the search for (or the build of) the compiled library.

    ``pending``: none was found, and it will be compiled on the first CPU call that needs it.
    """

    loaded: bool
    reason: str
    path: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    pending: bool = False


def torch_version_tuple(version: str | None = None) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version or torch.__version__)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def package_dir() -> Path:
    """Where ``setup.py`` puts the library (``tal/cuda_ops/_cpu``)."""
    return Path(__file__).resolve().parent


def cache_root() -> Path:
    """``$TAL_CACHE_DIR``, by default ``~/.cache/tal``."""
    root = os.environ.get("TAL_CACHE_DIR", "").strip()
    return Path(root).expanduser() if root else Path.home() / ".cache" / "tal"


def sources_digest() -> str:
    """Short SHA-256 of the C++ sources and build flags (a changed source gets a new cache folder)."""
    digest = hashlib.sha256()
    for path in sorted(buildcfg.CSRC_DIR.rglob("*")):
        if path.suffix in (".h", ".cpp") and path.is_file():
            digest.update(path.relative_to(buildcfg.CSRC_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    digest.update(" ".join(buildcfg.compile_args()).encode())
    return digest.hexdigest()[:12]


def jit_dir() -> Path:
    """The first-use build folder: one per kernels version and sources, torch, Python and machine."""
    tag = (
        f"k{buildcfg.KERNELS_VERSION}-{sources_digest()}-torch{torch.__version__}"
        f"-py{sys.version_info.major}{sys.version_info.minor}-{platform.machine()}"
    )
    return cache_root() / "cuda-ops" / re.sub(r"[^A-Za-z0-9_.+-]", "_", tag)


def find_library(directory: Path) -> Path | None:
    if not directory.is_dir():
        return None
    for name in buildcfg.LIBRARY_NAMES:
        for path in sorted(directory.glob(name + "*")):
            if path.suffix in _LIB_SUFFIXES and path.is_file():
                return path
    return None


def read_build_info(directory: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((directory / buildcfg.BUILD_INFO).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def vet(info: dict[str, Any] | None) -> str | None:
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
        return bool(torch._C._dispatch_has_kernel_for_dispatch_key("tal_ops_ext::segment_iou", "CPU"))
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


def candidate_dirs(include_installed: bool = True) -> list[Path]:
    """Folders searched for a library: ``$TAL_OPS_EXT_DIR``, the package, the first-use build cache."""
    dirs = []
    if include_installed:
        extra = os.environ.get("TAL_OPS_EXT_DIR")
        if extra:
            dirs.append(Path(extra))
        dirs.append(package_dir())
    dirs.append(jit_dir())
    return dirs


def describe(info: dict[str, Any] | None) -> str:
    """One phrase about a build record: ABI, torch range, where it was compiled."""
    if not info:
        return "unknown build"
    need = info.get("min_torch", [0, 0])
    origin = info.get("origin", "setup.py")
    if info.get("compile_seconds") is not None:
        origin = f"{origin} in {info['compile_seconds']:.1f} s"
    return (
        f"{info.get('abi')} ABI, loads in torch>={need[0]}.{need[1]}, compiled with torch "
        f"{info.get('built_with_torch')}, {origin}"
    )


def load_extension(dirs: list[Path] | None = None) -> ExtStatus:
    """Load the first acceptable library found in ``dirs`` (default: :func:`candidate_dirs`); never raises."""
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
                return ExtStatus(True, f"loaded {lib} ({describe(info)})", str(lib), info or {}, skipped)
            skipped.append((str(lib), reason))
    except Exception as exc:  # pragma: no cover - defensive: import must never fail
        skipped.append(("<search>", f"{type(exc).__name__}: {exc}"))
    if skipped:
        detail = "; ".join(f"{path}: {why}" for path, why in skipped)
        return ExtStatus(False, f"no usable compiled kernels ({detail})", None, {}, skipped)
    return ExtStatus(False, "tal-cuda-ops was installed without its compiled kernels", None, {}, skipped)


def build_info_record(origin: str, **extra: Any) -> dict[str, Any]:
    """The build record written next to a library this package compiled."""
    return {
        "abi": "stable",
        "min_torch": list(buildcfg.STABLE_TARGET),
        "kernels_version": buildcfg.KERNELS_VERSION,
        "built_with_torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "origin": origin,
        "flags": buildcfg.compile_args(),
        **extra,
    }
