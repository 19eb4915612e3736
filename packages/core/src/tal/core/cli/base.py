"""What a ``tal`` subcommand is."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A ``tal`` subcommand.

    ``add_arguments(parser)`` declares its arguments (it may add nested subparsers);
    ``run(args)`` executes it and returns the process exit code.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
