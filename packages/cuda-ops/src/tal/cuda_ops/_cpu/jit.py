"""Compiling the CPU kernels on first use into the user cache (``torch.utils.cpp_extension`` + ninja).

An install that has no compiled library (an isolated source build: ``pip install
./packages/cuda-ops`` without torch in the build environment) gets one the first time an op
needs it on CPU: :func:`first_use` compiles it into :func:`~tal.cuda_ops._cpu.library.jit_dir`
(``$TAL_CACHE_DIR``, default ``~/.cache/tal``) and loads it. A file lock makes concurrent
processes (DDP ranks, pytest workers) compile once; the others wait and load the result.
One WARNING line announces the compile; where no compiler works one WARNING line names the
slowdown and the fix, and the pure-torch references run. A failed compile is remembered
(``build_failed.json`` in the cache folder) so later processes do not retry it on every start;
``python -m tal.cuda_ops build`` retries.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import buildcfg, library

logger = logging.getLogger(__name__)

#: Library file name produced by the first-use build (one of ``buildcfg.LIBRARY_NAMES``).
JIT_NAME = "tal_cuda_ops_kernels"
FAILURE_RECORD = "build_failed.json"

FIX = (
    "install a C++ compiler (g++ or clang++; CXX selects one) and ninja (pip install ninja), "
    "then call again or run `python -m tal.cuda_ops build`"
)
FIX_FAILED = "fix the compiler error it records, then run `python -m tal.cuda_ops build`"
SLOWDOWN = "one to two orders of magnitude slower for NMS and IoU (tal-cuda-ops README, Performance)"


class BuildError(RuntimeError):
    """The compiler ran and failed (or produced no loadable library)."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def compiler() -> str | None:
    """Path of the C++ compiler torch's builder will call (``$CXX``, default ``c++``), or None."""
    words = shlex.split(os.environ.get("CXX", "")) or ["c++"]
    return shutil.which(words[0])


def ninja() -> str | None:
    """Path of the ninja executable (the ``ninja`` pip package's, else one on PATH), or None."""
    try:
        import ninja as ninja_package  # type: ignore[import-untyped]

        path = Path(ninja_package.BIN_DIR) / ("ninja.exe" if os.name == "nt" else "ninja")
        if path.is_file():
            return str(path)
    except Exception:
        pass
    return shutil.which("ninja")


def toolchain_problem() -> str | None:
    """Why nothing can be compiled here (None when a compiler and ninja are there)."""
    if compiler() is None:
        return f"no C++ compiler found ({os.environ.get('CXX') or 'c++'} is not on PATH)"
    if ninja() is None:
        return "ninja is not installed (pip install ninja)"
    if library.torch_version_tuple() < buildcfg.STABLE_TARGET:
        major, minor = buildcfg.STABLE_TARGET
        return f"compiling the kernels needs torch >= {major}.{minor}"
    return None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes (released when the holder exits, even by a crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        if os.name == "nt":
            import msvcrt

            while True:
                try:
                    handle.seek(0)
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined]
                    break
                except OSError:  # LK_LOCK gives up after ~10 s; keep waiting
                    continue
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_json(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def _compile(out: Path, verbose: bool) -> tuple[Path, float]:
    """Compile the library into ``out`` in a subprocess; returns its path and the seconds it took."""
    build_dir = out / "build"
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    script = textwrap.dedent(
        f"""
        from torch.utils.cpp_extension import load
        load(name={JIT_NAME!r}, sources={buildcfg.source_paths()!r},
             extra_cflags={buildcfg.compile_args()!r}, build_directory={str(build_dir)!r},
             is_python_module=False, verbose={bool(verbose)!r})
        """
    )
    env = dict(os.environ)
    ninja_path = ninja()
    if ninja_path is not None:  # torch's builder calls `ninja` from PATH
        env["PATH"] = os.pathsep.join([str(Path(ninja_path).parent), env.get("PATH", "")])
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=not verbose, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or "").splitlines() if line.strip()]
        raise BuildError("\n".join(lines[-30:]) or f"the compiler exited with {proc.returncode}")
    built = library.find_library(build_dir)
    if built is None:
        raise BuildError(f"the build finished but no library was found in {build_dir}")
    target = out / built.name
    tmp = out / f".{built.name}.{os.getpid()}.tmp"
    shutil.copy2(built, tmp)
    os.replace(tmp, target)  # a new file: a process that mapped an older copy keeps it intact
    shutil.rmtree(build_dir, ignore_errors=True)
    return target, seconds


def _toolchain_record() -> dict[str, Any]:
    return {"compiler": compiler(), "ninja": ninja()}


def _build_locked(out: Path, origin: str, verbose: bool) -> Path:
    """Compile into ``out`` (the caller holds its lock): a failure is remembered, the record written last."""
    out.mkdir(parents=True, exist_ok=True)
    (out / buildcfg.BUILD_INFO).unlink(missing_ok=True)
    try:
        lib, seconds = _compile(out, verbose)
    except BuildError as exc:
        _write_json(out / FAILURE_RECORD, {"error": str(exc), **_toolchain_record()})
        raise
    (out / FAILURE_RECORD).unlink(missing_ok=True)
    record = library.build_info_record(
        origin, compile_seconds=round(seconds, 2), sources=library.sources_digest(), **_toolchain_record()
    )
    _write_json(out / buildcfg.BUILD_INFO, record)
    logger.info("tal.cuda_ops: compiled %s in %.1f s", lib, seconds)
    return lib


def _lock_path(out: Path) -> Path:
    return out.with_name(out.name + ".lock")


def build(directory: Path | None = None, *, verbose: bool = False) -> Path:
    """Compile the kernels into ``directory`` (default: the first-use cache folder) now; returns the library.

    Takes the cache lock, so it never races a first-use build. Raises :class:`BuildError` (the
    compile failed) or ``RuntimeError`` (no toolchain).
    """
    problem = toolchain_problem()
    if problem is not None:
        raise RuntimeError(f"cannot compile the tal-cuda-ops kernels: {problem}; {FIX}")
    out = Path(directory) if directory is not None else library.jit_dir()
    with file_lock(_lock_path(out)):
        logger.warning("tal.cuda_ops: compiling the C++ CPU kernels into %s", out)
        return _build_locked(out, "python -m tal.cuda_ops build", verbose)


def _earlier_failure(out: Path) -> str | None:
    """The remembered failure of a compile with the same toolchain in ``out``, if any."""
    try:
        record = json.loads((out / FAILURE_RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or {k: record.get(k) for k in ("compiler", "ninja")} != _toolchain_record():
        return None
    last = [line for line in str(record.get("error", "")).splitlines() if line.strip()]
    return last[-1] if last else "unknown error"


def _fallback(reason: str, fix: str = FIX) -> library.ExtStatus:
    logger.warning(
        "tal.cuda_ops: the C++ CPU kernels are unavailable (%s); CPU ops run the pure-torch references, %s. Fix: %s.",
        reason,
        SLOWDOWN,
        fix,
    )
    return library.ExtStatus(False, f"{reason}; fix: {fix}")


def first_use() -> library.ExtStatus:
    """Load the kernels from the first-use cache, compiling them there first if needed; never raises."""
    out = library.jit_dir()
    if _flag("TAL_OPS_NO_BUILD_EXT"):
        logger.info("tal.cuda_ops: TAL_OPS_NO_BUILD_EXT=1, not compiling the C++ kernels")
        return library.ExtStatus(False, "not compiled: TAL_OPS_NO_BUILD_EXT=1 turns compiling on first use off")
    try:
        problem = toolchain_problem()
        if problem is not None:
            return _fallback(problem)
        with file_lock(_lock_path(out)):
            status = library.load_extension([out])  # compiled meanwhile by another process?
            if status.loaded:
                return status
            failure = _earlier_failure(out)
            if failure is not None:
                return _fallback(
                    f"an earlier compile in {out} failed: {failure} (details in {out / FAILURE_RECORD})", FIX_FAILED
                )
            logger.warning(
                "tal.cuda_ops: compiling the C++ CPU kernels (first use, once per torch and Python version) into %s",
                out,
            )
            try:
                _build_locked(out, "first-use build", verbose=False)
            except BuildError as exc:
                last = str(exc).splitlines()[-1] if str(exc) else "unknown error"
                return _fallback(
                    f"compiling them in {out} failed: {last} (details in {out / FAILURE_RECORD})", FIX_FAILED
                )
        status = library.load_extension([out])
        if not status.loaded:
            return _fallback(status.reason)
        return status
    except Exception as exc:  # a read-only cache, a full disk: never break the op
        return _fallback(f"the first-use build failed: {type(exc).__name__}: {exc}")
