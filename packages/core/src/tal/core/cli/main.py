"""Entry point of the ``tal`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tal.core.errors import TalError
from tal.core.registry import Registry, call_with_registry, get_registry


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
        call_with_registry(command.add_arguments, registry, p)
        p.set_defaults(_run=command.run)
    return parser


#: an error message is cut to this many characters (a YAML anchor bomb once produced 28 MB of text)
MAX_ERROR_CHARS = 4000


def capped(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``message`` cut to ``limit`` characters, saying how much was left out."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... [{len(message) - limit} more characters not shown]"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tal``; returns the exit code (2 for bad input, with the message on stderr)."""
    from tal.core.logger import setup_logging

    setup_logging()
    registry = get_registry()
    parser = build_parser(registry)
    args = parser.parse_args(argv)
    try:
        return int(call_with_registry(args._run, registry, args) or 0)
    except TalError as exc:
        print(f"tal {args.command}: error: {capped(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
