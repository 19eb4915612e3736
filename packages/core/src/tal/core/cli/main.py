"""Entry point of the ``tal`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tal.core.errors import TalError
from tal.core.registry import Registry, get_registry


def build_parser(registry: Registry) -> argparse.ArgumentParser:
    """An argparse parser with one subcommand per registered command."""
    from tal.core import __version__
    from tal.core.cli import plugins_cmd

    parser = argparse.ArgumentParser(
        prog="tal",
        description="tal: temporal action localization, segmentation and skeleton recognition.",
    )
    parser.add_argument("--version", action="version", version=f"tal-core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands = {c.name: c.factory for c in registry.components("commands")}
    commands.setdefault("plugins", plugins_cmd.PLUGINS)  # always there, even if core's plugin is broken
    for name, command in sorted(commands.items()):
        p = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tal``; returns the exit code (2 for bad input, with the message on stderr)."""
    registry = get_registry()
    parser = build_parser(registry)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except TalError as exc:
        print(f"tal {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
