"""Compiling the C++ kernels on first use (tal.cuda_ops._cpu.jit), in fresh processes.

``TAL_OPS_JIT_ONLY=1`` hides the library installed with the package, and ``TAL_CACHE_DIR`` points
at an empty folder, so each process starts as an isolated source install would: no compiled
kernels anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _probe import COMPILE_LINE, FALLBACK_LINE, PROBE

from tal.cuda_ops._cpu import jit


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAL_OPS_") and k != "TAL_CACHE_DIR"}
    env.update(TAL_CACHE_DIR=str(cache), TAL_OPS_JIT_ONLY="1", **extra)
    return env


def _start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(proc: subprocess.Popen) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def _can_compile() -> bool:
    return jit.toolchain_problem() is None


@pytest.mark.slow
@pytest.mark.skipif(not _can_compile(), reason="needs a C++ compiler and ninja")
def test_first_call_compiles_once_under_concurrent_processes(tmp_path):
    env = _env(tmp_path / "cache")
    procs = [_start(env), _start(env)]  # two ranks starting together
    results = [_finish(p) for p in procs]
    stderr = "".join(err for _, err in results)
    assert stderr.count(COMPILE_LINE) == 1, stderr  # one process compiled, the other waited for its lock
    assert FALLBACK_LINE not in stderr
    for result, err in results:
        assert result["pending_after_import"] is True  # importing compiled nothing
        assert result["impl"] == "cpu-ext", result["reason"]
        assert result["equal"], result
        assert err.count("\n") <= 1, err  # at most the one compile line
    folders = [p for p in (tmp_path / "cache" / "cuda-ops").iterdir() if p.is_dir()]
    assert len(folders) == 1
    libs = [p for p in folders[0].iterdir() if p.suffix == ".so"]
    assert len(libs) == 1 and not (folders[0] / "build").exists()
    record = json.loads((folders[0] / "_build_info.json").read_text())
    assert record["origin"] == "first-use build" and record["compile_seconds"] > 0
    assert str(folders[0]) in results[0][0]["reason"] and "first-use build in" in results[0][0]["reason"]

    # a later process loads the cached library without compiling
    later, err = _finish(_start(env))
    assert COMPILE_LINE not in err and later["impl"] == "cpu-ext" and later["equal"]


def test_no_compiler_warns_once_and_runs_the_references(tmp_path):
    env = _env(tmp_path / "cache", CXX=str(tmp_path / "no-such-compiler"))
    result, err = _finish(_start(env))
    assert result["pending_after_import"] is True
    assert result["impl"] == "reference" and result["equal"]
    assert err.count(FALLBACK_LINE) == 1 and COMPILE_LINE not in err, err
    warning = next(line for line in err.splitlines() if FALLBACK_LINE in line)
    assert "no C++ compiler found" in warning and "slower" in warning and "Fix: install a C++ compiler" in warning
    assert "no C++ compiler found" in result["reason"]


@pytest.mark.skipif(shutil.which("false") is None, reason="needs a `false` executable")
def test_a_failed_compile_is_remembered_and_not_retried(tmp_path):
    env = _env(tmp_path / "cache", CXX=str(shutil.which("false")))  # a "compiler" that always fails
    first, err = _finish(_start(env))
    assert first["impl"] == "reference" and first["equal"]
    assert err.count(COMPILE_LINE) == 1 and err.count(FALLBACK_LINE) == 1, err
    assert list((tmp_path / "cache").rglob(jit.FAILURE_RECORD))
    second, err = _finish(_start(env))
    assert second["impl"] == "reference"
    assert COMPILE_LINE not in err and err.count(FALLBACK_LINE) == 1 and "an earlier compile" in err, err
    assert "python -m tal.cuda_ops build" in second["reason"]


def test_no_build_opt_out_compiles_nothing_and_stays_quiet(tmp_path):
    env = _env(tmp_path / "cache", TAL_OPS_NO_BUILD_EXT="1")
    result, err = _finish(_start(env))
    assert result["impl"] == "reference" and result["equal"] and "TAL_OPS_NO_BUILD_EXT=1" in result["reason"]
    assert COMPILE_LINE not in err and FALLBACK_LINE not in err, err
    assert not (tmp_path / "cache").exists()


def test_file_lock_is_exclusive(tmp_path):
    """flock/msvcrt locks belong to an open file, so a second open (here in another thread) must wait."""
    lock, done = tmp_path / "x.lock", tmp_path / "done"
    held = threading.Event()

    def holder() -> None:
        with jit.file_lock(lock):
            held.set()
            time.sleep(1.0)
            done.write_text("written while holding the lock")

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(60)
    with jit.file_lock(lock):  # granted only once the holder let go, after it wrote the file
        assert done.exists()
    thread.join(60)
