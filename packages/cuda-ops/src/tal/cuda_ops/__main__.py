"""``python -m tal.cuda_ops [info|build]``: show the backends, or JIT-compile the CPU kernels."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tal.cuda_ops", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="print which implementation serves each op (default)")
    build = sub.add_parser("build", help="compile the C++ kernels into the cache folder (needs a compiler and ninja)")
    build.add_argument("--dir", default=None, help="output folder (default: the per-torch cache folder)")
    build.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    from tal import cuda_ops

    if args.command == "build":
        try:
            path = cuda_ops.build_extension(args.dir, verbose=args.verbose)
        except Exception as exc:
            print(f"build failed: {exc}", file=sys.stderr)
            return 1
        print(f"built {path}; it is used from the next `import tal.cuda_ops` on")
        return 0
    print(cuda_ops.format_backend_info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
