"""The ``tal`` command line. Subcommands are registered through the ``register_commands`` hook."""

from tal.core.cli.base import Command

__all__ = ["Command"]
