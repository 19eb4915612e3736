"""The test matrix: one session per package against its installed wheel, the example plugin, lint, typecheck.

Run everything with ``nox``; one session with ``nox -s core``. torch is pinned to the tested CPU
release so sessions reuse the local wheel instead of downloading a CUDA build.
"""

from __future__ import annotations

import nox

TORCH = "torch==2.13.0"
TRITON = "triton==3.8.0"
PYTEST = ["pytest>=7", "hypothesis>=6"]

nox.options.sessions = ["lint", "typecheck", "core", "cuda_ops", "loc_actionformer", "example_plugin"]
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


@nox.session
def core(session: nox.Session) -> None:
    """tal-core against its installed wheel."""
    session.install(TORCH, *PYTEST, "tensorboard")
    session.install("./packages/core")
    run_pytest(session, "packages/core/tests")


@nox.session
def cuda_ops(session: nox.Session) -> None:
    """tal-cuda-ops: C++ kernels built at install, Triton kernels under TRITON_INTERPRET=1 on CPU."""
    session.install(TORCH, TRITON, "ninja", "setuptools>=77", "wheel", *PYTEST)
    session.install("--no-build-isolation", "./packages/cuda-ops")
    run_pytest(session, "packages/cuda-ops/tests")


@nox.session
def loc_actionformer(session: nox.Session) -> None:
    """tal-loc-actionformer with the tal-core and tal-cuda-ops it depends on."""
    session.install(TORCH, "ninja", "setuptools>=77", "wheel", *PYTEST)
    session.install("--no-build-isolation", "./packages/core", "./packages/cuda-ops", "./packages/loc-actionformer")
    run_pytest(session, "packages/loc-actionformer/tests")


@nox.session
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


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on tal-core."""
    session.install(TORCH, "mypy>=1.10", "types-PyYAML")
    session.install("./packages/core")
    session.run(
        "mypy",
        "packages/core/src/tal/core",
        "packages/loc-actionformer/src/tal/loc_actionformer",
        "packages/cuda-ops/src/tal/cuda_ops",
        "--config-file",
        "mypy.ini",
    )
