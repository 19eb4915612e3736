"""``python -m tal.cuda_ops [info|build]``: show the backends (compiling the CPU kernels if needed), or build them."""

from __future__ import annotations

import argparse
import logging
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tal.cuda_ops", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="print which implementation serves each op and why (default)")
    build = sub.add_parser("build", help="compile the C++ kernels now (needs a C++ compiler and ninja)")
    build.add_argument("--dir", default=None, help="output folder (default: the first-use build cache)")
    build.add_argument("--verbose", action="store_true", help="show the compiler's output")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    from tal import cuda_ops
    from tal.cuda_ops._cpu import library

    if args.command == "build":
        start = time.perf_counter()
        try:
            path = cuda_ops.build_extension(args.dir, verbose=args.verbose)
        except Exception as exc:
            print(f"build failed: {exc}", file=sys.stderr)
            return 1
        print(f"built {path} in {time.perf_counter() - start:.1f} s")
        if args.dir is not None:
            print(f"set TAL_OPS_EXT_DIR={args.dir} to load it")
        else:
            print(
                "tal.cuda_ops loads it from the next import on, unless a library installed with the package loads first"
            )
        return 0
    print(cuda_ops.format_backend_info())
    print(f"first-use build cache: {library.jit_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
