"""The test matrix: one session per package against its installed wheel, the example plugin, lint,
typecheck, and the wheels as a user installs them.

Run everything with ``nox``; one session with ``nox -s core``; ``nox -s build`` writes an sdist and a
wheel of every package into ``dist/``. torch is pinned to the tested CPU release so sessions reuse the
local wheel instead of downloading a CUDA build.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nox

TORCH = "torch==2.13.0"
TRITON = "triton==3.8.0"
PYTEST = ["pytest>=7", "hypothesis>=6"]
BUILD_TOOLS = ["ninja", "setuptools>=77", "wheel"]
ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"

#: The test sessions' venvs see the interpreter's own site-packages, so a torch (and triton) installed
#: there once is reused instead of being unpacked into every venv again (about 40 s each); ``.ci/run``
#: installs the pinned pair there first. Without them, each session installs its own as before. What a
#: session installs itself (the packages under test, pytest, ...) comes first on its path. ``wheels``
#: and ``isolated_install`` keep fully isolated venvs: they test clean installs.
SHARES_TORCH = {"venv_params": ["--system-site-packages"]}

#: folder → distribution, in dependency order
PACKAGES = {
    "packages/core": "tal-core",
    "packages/cuda-ops": "tal-cuda-ops",
    "packages/loc-actionformer": "tal-loc-actionformer",
    "packages/seg-tst": "tal-seg-tst",
    "packages/skeleton-lst": "tal-skeleton-lst",
    "packages/stream-rl": "tal-stream-rl",
}

nox.options.sessions = [
    "lint",
    "typecheck",
    "core",
    "cuda_ops",
    "loc_actionformer",
    "seg_tst",
    "skeleton_lst",
    "stream_rl",
    "example_plugin",
    "wheels",
    "isolated_install",
]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False


def run_pytest(session: nox.Session, *paths: str, env: dict[str, str] | None = None) -> None:
    """pytest, treating "no tests ran" (exit 5) as success; ``-p no:cacheprovider`` keeps the tree clean."""
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *paths,
        *session.posargs,
        env=env or {},
        success_codes=[0, 5],
    )


@nox.session(**SHARES_TORCH)
def core(session: nox.Session) -> None:
    """tal-core against its installed wheel."""
    session.install(TORCH, *PYTEST, "tensorboard")
    session.install("./packages/core")
    run_pytest(session, "packages/core/tests")


@nox.session(**SHARES_TORCH)
def cuda_ops(session: nox.Session) -> None:
    """tal-cuda-ops: C++ kernels built at install, Triton kernels under TRITON_INTERPRET=1 on CPU."""
    session.install(TORCH, TRITON, *BUILD_TOOLS, *PYTEST)
    session.install("--no-build-isolation", "./packages/cuda-ops")
    run_pytest(session, "packages/cuda-ops/tests")


@nox.session
def isolated_install(session: nox.Session) -> None:
    """``pip install ./packages/cuda-ops`` with build isolation in a fresh venv compiles the kernels on first use."""
    session.install(TORCH, *BUILD_TOOLS, *PYTEST)
    run_pytest(session, "packages/cuda-ops/tests/test_isolated_install.py", env={"TAL_TEST_ISOLATED_INSTALL": "1"})


@nox.session(**SHARES_TORCH)
def loc_actionformer(session: nox.Session) -> None:
    """tal-loc-actionformer with the tal-core and tal-cuda-ops it depends on."""
    session.install(TORCH, *BUILD_TOOLS, *PYTEST)
    session.install("--no-build-isolation", "./packages/core", "./packages/cuda-ops", "./packages/loc-actionformer")
    run_pytest(session, "packages/loc-actionformer/tests")


@nox.session(**SHARES_TORCH)
def seg_tst(session: nox.Session) -> None:
    """tal-seg-tst with tal-core."""
    session.install(TORCH, *PYTEST)
    session.install("./packages/core", "./packages/seg-tst")
    run_pytest(session, "packages/seg-tst/tests")


@nox.session(**SHARES_TORCH)
def skeleton_lst(session: nox.Session) -> None:
    """tal-skeleton-lst with tal-core and tal-cuda-ops (graph aggregation; Triton path under the interpreter)."""
    session.install(TORCH, TRITON, *BUILD_TOOLS, *PYTEST)
    session.install("--no-build-isolation", "./packages/core", "./packages/cuda-ops", "./packages/skeleton-lst")
    run_pytest(session, "packages/skeleton-lst/tests")


@nox.session(**SHARES_TORCH)
def stream_rl(session: nox.Session) -> None:
    """tal-stream-rl with tal-core."""
    session.install(TORCH, *PYTEST)
    session.install("./packages/core", "./packages/stream-rl")
    run_pytest(session, "packages/stream-rl/tests")


@nox.session(**SHARES_TORCH)
def example_plugin(session: nox.Session) -> None:
    """The third-party plugin example, installed beside tal-core the way an outside author would."""
    session.install(TORCH, *PYTEST)
    session.install("./packages/core", "./examples/third-party-plugin")
    run_pytest(session, "examples/third-party-plugin/tests")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(**SHARES_TORCH)
def typecheck(session: nox.Session) -> None:
    """mypy on every package."""
    session.install(TORCH, "mypy>=1.10", "types-PyYAML")
    session.install("./packages/core")
    session.run(
        "mypy",
        *(f"{folder}/src/tal/{Path(folder).name.replace('-', '_')}" for folder in PACKAGES),
        "--config-file",
        "mypy.ini",
    )


def build_distributions(session: nox.Session, out: Path) -> None:
    """An sdist and a wheel of every package into ``out`` (the tal-cuda-ops wheel carries the compiled
    stable-ABI library, built against the torch of this session and loadable by any torch >= 2.10)."""
    session.install(TORCH, *BUILD_TOOLS, "build>=1")
    out.mkdir(exist_ok=True)
    for folder, dist in PACKAGES.items():
        stem = dist.replace("-", "_")
        for old in [*out.glob(f"{stem}-*.whl"), *out.glob(f"{stem}-*.tar.gz")]:
            old.unlink()
        session.run("python", "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out), folder)


@nox.session
def build(session: nox.Session) -> None:
    """Write an sdist and a wheel of every package into dist/."""
    build_distributions(session, DIST)
    session.log("wrote " + ", ".join(sorted(p.name for p in DIST.iterdir())))


WHEEL_CHECK = """
import tal.cuda_ops as ops, torch
info = ops.backend_info()
impl = info["soft_nms_1d"]["cpu"].impl
assert impl == "cpu-ext", f"soft_nms_1d on CPU runs {impl!r}: {info['soft_nms_1d']['cpu'].reason}"
boxes = torch.tensor([[0.0, 10.0], [1.0, 11.0], [20.0, 30.0]])
scores = torch.tensor([0.9, 0.8, 0.7])
out = ops.soft_nms_1d(boxes, scores, iou_threshold=0.1, sigma=0.5, min_score=0.001, method="gaussian")
print("compiled soft-NMS from the wheel:", [round(float(s), 4) for s in out[1]])
"""


@nox.session
def wheels(session: nox.Session) -> None:
    """What a user of a subset of methods gets: the wheels of dist/ in a fresh venv outside the repository.

    Builds dist/, creates a venv in a temporary folder, installs torch (pinned) and
    ``tal-core tal-cuda-ops tal-loc-actionformer`` from dist/ (``--find-links``), then runs ``tal plugins``,
    ``tal demo`` and ``python -m tal.cuda_ops`` there and checks that the compiled kernels run without
    a compile step.
    """
    build_distributions(session, DIST)
    outside = Path(tempfile.mkdtemp(prefix="tal-wheels-"))
    try:
        venv = outside / "venv"
        session.run(sys.executable, "-m", "venv", str(venv), external=True)
        bindir = venv / ("Scripts" if os.name == "nt" else "bin")
        py = str(bindir / "python")
        env = {
            "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "TAL_CACHE_DIR": str(outside / "cache"),  # an empty cache: the library must come from the wheel
            "TAL_OPS_NO_BUILD_EXT": "1",  # and no JIT build may stand in for it
        }
        session.run(py, "-m", "pip", "install", "-q", TORCH, external=True, env=env)
        session.run(
            py, "-m", "pip", "install", "-q", "--find-links", str(DIST),
            "tal-core", "tal-cuda-ops", "tal-loc-actionformer",
            external=True, env=env,
        )  # fmt: skip
        session.run(py, "-m", "pip", "list", external=True, env=env)
        session.run(str(bindir / "tal"), "plugins", external=True, env=env)
        session.run(py, "-m", "tal.cuda_ops", external=True, env=env)
        session.run(py, "-c", WHEEL_CHECK, external=True, env=env)
        session.run(str(bindir / "tal"), "demo", "--out", str(outside / "demo"), external=True, env=env)
    finally:
        shutil.rmtree(outside, ignore_errors=True)
