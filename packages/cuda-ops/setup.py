"""Build script of tal-cuda-ops.

Compiles the C++ CPU kernels (torch stable ABI, one build for every torch >=
2.10) with setuptools + torch.utils.cpp_extension (+ ninja when installed).
It never fails the install because of them: without torch in the build
environment (an isolated build), with torch < 2.10, without a working compiler,
or when TAL_OPS_NO_BUILD_EXT=1, the package installs without the library (one
warning here). The first CPU call that needs the kernels then compiles them into
the user cache (tal.cuda_ops._cpu.jit); only where no compiler works do the
pure-torch references run (with one warning at that call).

``pip install --no-build-isolation ./packages/cuda-ops`` compiles them here, and
``pip wheel --no-build-isolation`` ships them in a cp310-abi3 wheel (see README).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
PKG_DIR = HERE / "src" / "tal" / "cuda_ops"


def _load_buildcfg():
    spec = importlib.util.spec_from_file_location("_tal_cuda_ops_buildcfg", PKG_DIR / "_cpu" / "buildcfg.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CFG = _load_buildcfg()


def _warn(message: str) -> None:
    print(f"tal-cuda-ops: WARNING: {message}", file=sys.stderr)


def _configure() -> tuple[list, dict, dict]:
    """(ext_modules, cmdclass, options); empty when the kernels cannot be built here."""
    if os.environ.get("TAL_OPS_NO_BUILD_EXT", "").strip() in ("1", "true", "yes"):
        _warn("TAL_OPS_NO_BUILD_EXT is set: installing without the C++ kernels")
        return [], {}, {}
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except Exception as exc:  # torch absent (isolated build) or broken
        _warn(
            f"torch is not importable in the build environment ({type(exc).__name__}: {exc}); installing without "
            "the C++ kernels: they are compiled on first use into $TAL_CACHE_DIR (default ~/.cache/tal; needs a "
            "C++ compiler), or now with `pip install --no-build-isolation`."
        )
        return [], {}, {}
    version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    if version < CFG.STABLE_TARGET:
        _warn(
            f"torch {torch.__version__} predates the stable ABI of the kernels (needs >= 2.10); installing without them"
        )
        return [], {}, {}

    sources = [os.path.relpath(path, HERE) for path in CFG.source_paths(PKG_DIR / "csrc")]
    ext = CppExtension(
        name="tal.cuda_ops._cpu._kernels",
        sources=sources,
        extra_compile_args={"cxx": CFG.compile_args()},
        py_limited_api=True,
    )

    class OptionalBuildExt(BuildExtension):
        """Builds the kernels if possible; a failure only costs the compiled backend."""

        def run(self) -> None:
            # Never ship a library left in build/ by an earlier build: remove it first.
            for extension in self.extensions:
                lib = Path(self.get_ext_fullpath(extension.name))
                for stale in (lib, lib.parent / CFG.BUILD_INFO):
                    if stale.exists():
                        stale.unlink()
            try:
                super().run()
            except Exception as exc:
                _warn(
                    f"compiling the C++ kernels failed ({type(exc).__name__}: {exc}); installing without them "
                    "(the first call that needs them retries the build; without a working compiler the pure-torch "
                    "references run)"
                )
                return
            for extension in self.extensions:
                lib = Path(self.get_ext_fullpath(extension.name))
                if lib.exists():
                    record = {
                        "abi": "stable",
                        "min_torch": list(CFG.STABLE_TARGET),
                        "kernels_version": CFG.KERNELS_VERSION,
                        "built_with_torch": torch.__version__,
                        "python": platform.python_version(),
                        "machine": platform.machine(),
                        "origin": "setup.py",
                        "flags": CFG.compile_args(),
                    }
                    (lib.parent / CFG.BUILD_INFO).write_text(json.dumps(record, indent=2))

        def get_outputs(self) -> list[str]:
            return [path for path in super().get_outputs() if os.path.exists(path)]

    return [ext], {"build_ext": OptionalBuildExt}, {"bdist_wheel": {"py_limited_api": "cp310"}}


ext_modules, cmdclass, options = _configure()
setup(ext_modules=ext_modules, cmdclass=cmdclass, options=options)
