"""Install tal-cuda-ops as users do, into a fresh venv (minutes: opt in with TAL_TEST_ISOLATED_INSTALL=1).

1. ``pip install <source copy>`` with build isolation (no torch in the build environment): the package
   installs without the library, and the first soft_nms_1d call compiles it into $TAL_CACHE_DIR, after
   which backend_info() says cpu-ext and the results equal the reference.
2. ``pip wheel --no-build-isolation --no-deps`` with this interpreter: a cp310-abi3 wheel carrying the
   library and its build record; installed into the same venv it loads the library without compiling.

The venv gets torch by ``pip install torch==<this torch>`` (pip's configured local wheels) and no
system site packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import torch
from _probe import COMPILE_LINE, FALLBACK_LINE, PROBE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("TAL_TEST_ISOLATED_INSTALL") != "1", reason="set TAL_TEST_ISOLATED_INSTALL=1 (a few minutes)"
    ),
]

SOURCE = Path(__file__).resolve().parents[1]


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1800, **kw)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _clean_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAL_", "PYTHON", "VIRTUAL_ENV"))}
    env["TAL_CACHE_DIR"] = str(cache)
    # nothing from the interpreter running the tests (its venv's ninja, say) is on the PATH
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix))
    return env


def _probe(python: Path, cache: Path) -> tuple[dict, str]:
    proc = _run([str(python), "-c", PROBE], env=_clean_env(cache), cwd=cache.parent)
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("isolated")
    src = root / "src"
    shutil.copytree(
        SOURCE,
        src,
        ignore=shutil.ignore_patterns("build", "*.so", "*.pyd", "_build_info.json", "*.egg-info", "__pycache__"),
    )
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    torch_version = torch.__version__.split("+")[0]
    _run([str(python), "-m", "pip", "install", "-q", f"torch=={torch_version}"], env=_clean_env(root / "unused"))
    return {"root": root, "src": src, "python": python}


def test_isolated_source_install_compiles_on_first_call(workspace):
    python, root = workspace["python"], workspace["root"]
    _run([str(python), "-m", "pip", "install", "-q", str(workspace["src"])], env=_clean_env(root / "unused"))
    site = Path(
        _run(
            [str(python), "-c", "import tal.cuda_ops, os; print(os.path.dirname(tal.cuda_ops.__file__))"],
            env=_clean_env(root / "unused"),
            cwd=root,
        ).stdout.strip()
    )
    assert not list((site / "_cpu").glob("_kernels*")), "an isolated build has no torch: it ships no library"
    cache = root / "cache-source-install"
    result, err = _probe(python, cache)
    assert err.count(COMPILE_LINE) == 1 and FALLBACK_LINE not in err, err
    assert result["pending_after_import"] is True
    assert result["impl"] == "cpu-ext" and str(cache) in result["reason"], result
    assert result["equal"], result
    again, err = _probe(python, cache)  # the next process loads the cached build
    assert COMPILE_LINE not in err and again["impl"] == "cpu-ext"


def test_wheel_ships_the_library_and_loads_without_compiling(workspace):
    python, root = workspace["python"], workspace["root"]
    dist = root / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-build-isolation",
            "--no-deps",
            str(workspace["src"]),
            "-w",
            str(dist),
        ]
    )
    (wheel,) = dist.glob("tal_cuda_ops-*.whl")
    platform_tag = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert wheel.name.endswith(f"-cp310-abi3-{platform_tag}.whl"), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("tal/cuda_ops/_cpu/_kernels") for n in names), names
    assert "tal/cuda_ops/_cpu/_build_info.json" in names
    _run(
        [str(python), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(wheel)],
        env=_clean_env(root / "unused"),
    )
    cache = root / "cache-wheel"
    result, err = _probe(python, cache)
    assert COMPILE_LINE not in err and FALLBACK_LINE not in err, err
    assert result["pending_after_import"] is False
    assert result["impl"] == "cpu-ext" and "site-packages" in result["reason"] and "setup.py" in result["reason"]
    assert result["equal"], result
    assert not cache.exists()
