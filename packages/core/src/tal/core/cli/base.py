"""What a ``tal`` subcommand is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A ``tal`` subcommand.

    ``add_arguments(parser)`` declares its arguments (it may add nested subparsers);
    ``run(args)`` executes it and returns the process exit code. Either may declare a second
    parameter ``registry`` to receive the registry ``tal`` loaded (see
    :func:`tal.core.registry.call_with_registry`).
    """

    help: str
    add_arguments: Callable[..., None]
    run: Callable[..., int]
