"""Extension loading, ABI checks, environment switches and the truthfulness of backend_info()."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

import tal.cuda_ops as ops
from tal.cuda_ops import _backend
from tal.cuda_ops._cpu import buildcfg as _buildcfg
from tal.cuda_ops._cpu import library as _ext


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TAL_OPS_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True, timeout=300
    )


def test_extension_loaded():
    """The suite expects the compiled kernels; a silently failed build must not pass CI."""
    if os.environ.get("TAL_OPS_EXPECT_NO_EXT") == "1" or _backend.DISABLE_EXT:
        pytest.skip("running without compiled kernels on purpose")
    assert _backend.cpu_library().loaded, _backend.EXT.reason
    assert Path(_backend.EXT.path).exists()
    assert int(torch.ops.tal_ops_ext.kernels_version()) == _buildcfg.KERNELS_VERSION


def test_backend_info_shape():
    info = ops.backend_info()
    assert list(info) == list(_backend.OPS)
    for per_device in info.values():
        assert set(per_device) == {"cpu", "cuda"}
        for choice in per_device.values():
            assert choice.impl in ("triton", "cpu-ext", "reference")
            assert choice.reason
    text = ops.format_backend_info()
    assert "batched_nms" in text and "graph_aggregate" in text


def _ext_ops_called(fn) -> set[str]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events() if e.name.startswith("tal_ops_ext::")}


def test_backend_info_is_what_runs_on_cpu(monkeypatch):
    g = torch.Generator().manual_seed(0)
    segs = torch.sort(torch.rand(50, 2, generator=g) * 10, 1).values
    scores = torch.rand(50, generator=g)
    labels = torch.randint(0, 3, (50,), generator=g)
    x = torch.randn(2, 3, 4, 5, generator=g, requires_grad=True)
    a = torch.randn(2, 3, 5, 5, generator=g, requires_grad=True)
    calls = {
        "segment_iou": lambda: ops.segment_iou(segs, segs),
        "segment_iou_matched": lambda: ops.segment_iou_matched(segs, segs),
        "nms_1d": lambda: ops.nms_1d(segs, scores, 0.3),
        "soft_nms_1d": lambda: ops.soft_nms_1d(segs, scores),
        "batched_nms": lambda: ops.batched_nms(segs, scores, labels, 0.3, 0.01, 20),
        "graph_aggregate": lambda: ops.graph_aggregate(x, a).sum().backward(),
    }
    for graph_ext in (False, True):
        monkeypatch.setattr(_backend, "GRAPH_CPU_EXT", graph_ext)
        info = ops.backend_info()
        for op, call in calls.items():
            used = _ext_ops_called(call)
            assert bool(used) == (info[op]["cpu"].impl == "cpu-ext"), (op, info[op]["cpu"], used)


def test_startup_report_strict_only(monkeypatch):
    missing = _ext.ExtStatus(False, "no usable compiled kernels (test)")
    monkeypatch.setattr(_backend, "EXT", missing)
    monkeypatch.setattr(_backend, "DISABLE_EXT", False)
    monkeypatch.setattr(_backend, "STRICT", True)
    with pytest.raises(_backend.ExtensionUnavailableError, match=r"TAL_OPS_STRICT.*no usable compiled kernels"):
        _backend.startup_report()
    monkeypatch.setattr(_backend, "STRICT", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _backend.startup_report()  # without STRICT, import says nothing: the first call does
    assert caught == []
    assert ops.backend_info()["nms_1d"]["cpu"].impl == "reference"


def test_vet_rejects_mismatched_builds():
    good = {"abi": "stable", "min_torch": list(_buildcfg.STABLE_TARGET), "kernels_version": _buildcfg.KERNELS_VERSION}
    assert _ext.vet(good) is None
    assert "no readable" in _ext.vet(None)
    assert "other sources" in _ext.vet({**good, "kernels_version": _buildcfg.KERNELS_VERSION + 1})
    assert "torch >= 99.0" in _ext.vet({**good, "min_torch": [99, 0]})
    assert "unknown ABI" in _ext.vet({**good, "abi": "pybind11"})


def _copy_library(tmp_path: Path, info: dict | None) -> Path:
    src = Path(_backend.EXT.path)
    dst = tmp_path / "_kernels.abi3.so"
    shutil.copy(src, dst)
    if info is not None:
        (tmp_path / _buildcfg.BUILD_INFO).write_text(json.dumps(info))
    return dst


def test_mismatched_library_is_skipped_and_the_next_one_used(tmp_path, need_ext):
    # A library whose record says it needs a newer torch (an "ABI mismatch") is skipped, with the
    # reason kept, and the package's own library is loaded instead; nothing crashes.
    info = json.loads((Path(_backend.EXT.path).parent / _buildcfg.BUILD_INFO).read_text())
    _copy_library(tmp_path, {**info, "min_torch": [99, 0]})
    proc = run_python(
        """
        from tal.cuda_ops import _backend
        print("LOADED", _backend.EXT.loaded, _backend.EXT.path)
        print("SKIPPED", _backend.EXT.skipped)
        """,
        TAL_OPS_EXT_DIR=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert "LOADED True" in proc.stdout and str(tmp_path) not in proc.stdout.split("SKIPPED")[0]
    assert "torch >= 99.0" in proc.stdout


def test_unloadable_library_falls_back_to_reference(tmp_path):
    (tmp_path / "_kernels.abi3.so").write_bytes(b"\x7fELF this is not a shared library")
    info = {"abi": "stable", "min_torch": list(_buildcfg.STABLE_TARGET), "kernels_version": _buildcfg.KERNELS_VERSION}
    (tmp_path / _buildcfg.BUILD_INFO).write_text(json.dumps(info))
    proc = run_python(
        f"""
        from pathlib import Path
        from tal.cuda_ops._cpu import library as _ext
        status = _ext.load_extension([Path({str(tmp_path)!r})])
        print("LOADED", status.loaded)
        print("REASON", status.reason)
        """,
        TAL_OPS_DISABLE_EXT="1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "LOADED False" in proc.stdout and "loading failed" in proc.stdout


def test_copied_library_loads_from_another_folder(tmp_path, need_ext):
    info = json.loads((Path(_backend.EXT.path).parent / _buildcfg.BUILD_INFO).read_text())
    _copy_library(tmp_path, info)
    proc = run_python(
        f"""
        from pathlib import Path
        import torch
        from tal.cuda_ops._cpu import library as _ext
        status = _ext.load_extension([Path({str(tmp_path)!r})])
        print("LOADED", status.loaded, status.path)
        print(torch.ops.tal_ops_ext.segment_iou(torch.tensor([[0., 2.]]), torch.tensor([[1., 3.]])).item())
        """,
        TAL_OPS_DISABLE_EXT="1",
    )
    assert proc.returncode == 0, proc.stderr
    assert f"LOADED True {tmp_path}" in proc.stdout and "0.333" in proc.stdout


def test_disable_ext_forces_references_everywhere():
    proc = run_python(
        """
        import warnings
        warnings.simplefilter("error")
        import torch
        import tal.cuda_ops as ops
        info = ops.backend_info()
        print(sorted({c.impl for d in info.values() for c in d.values()}))
        print(float(ops.segment_iou(torch.tensor([[0., 2.]]), torch.tensor([[1., 3.]]))))
        print(hasattr(torch.ops.tal_ops_ext, "segment_iou"))
        """,
        TAL_OPS_DISABLE_EXT="1",
        TAL_OPS_STRICT="1",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    assert lines[0] == "['reference']"
    assert lines[1].startswith("0.333")
    assert lines[2] == "False"


def test_strict_passes_when_the_kernels_load(need_ext):
    proc = run_python("import tal.cuda_ops as ops; print(ops.backend_info()['nms_1d']['cpu'].impl)", TAL_OPS_STRICT="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "cpu-ext"


def test_cli_prints_backends():
    proc = run_python("from tal.cuda_ops.__main__ import main; main([])")
    assert proc.returncode == 0, proc.stderr
    assert "segment_iou" in proc.stdout and "cpu" in proc.stdout


def _can_compile() -> bool:
    from torch.utils.cpp_extension import is_ninja_available

    return shutil.which(os.environ.get("CXX", "c++")) is not None and is_ninja_available()


@pytest.mark.slow
def test_install_without_a_compiler_succeeds_and_warns_once(tmp_path):
    """pip install with a broken compiler: the install succeeds; the first call warns once, the references run."""
    source = Path(__file__).resolve().parents[1]
    if not (source / "setup.py").exists():
        pytest.skip("needs the package source tree")
    src_copy = tmp_path / "src"
    shutil.copytree(
        source, src_copy, ignore=shutil.ignore_patterns("build", "tests", "*.so", "*.egg-info", "_build_info.json")
    )
    target = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAL_OPS_")}
    env["CXX"] = str(tmp_path / "no-such-compiler")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            str(target),
            str(src_copy),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list(target.glob("tal/cuda_ops/_kernels*"))
    env["PYTHONPATH"] = str(target)
    env["TAL_CACHE_DIR"] = str(tmp_path / "empty-cache")  # the compiler is still broken: no first-use build
    check = subprocess.run(
        [
            sys.executable,
            "-W",
            "always",
            "-c",
            "import torch, tal.cuda_ops as ops; print(ops.__file__); print(ops.backend_info()['nms_1d']['cpu'].impl); "
            "print(float(ops.segment_iou(torch.tensor([[0., 2.]]), torch.tensor([[1., 3.]]))))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stderr
    lines = check.stdout.split("\n")
    assert lines[0].startswith(str(target)) and lines[1] == "reference" and lines[2].startswith("0.333")
    assert check.stderr.count("the C++ CPU kernels are unavailable") == 1, check.stderr
    assert "no C++ compiler found" in check.stderr and "slower" in check.stderr, check.stderr
