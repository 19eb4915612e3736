"""Exceptions raised by tal; every message names the file, field and value at fault."""

from __future__ import annotations


class TalError(Exception):
    """Base class of every error tal raises on purpose."""


class DataFormatError(TalError, ValueError):
    """A data file (annotations, features, labels, predictions) is missing or malformed.

    The message always starts with the file path and names the entry at fault.
    """

    def __init__(self, path: object, message: str, entry: str | None = None) -> None:
        self.path = str(path)
        self.entry = entry
        where = f"{self.path}" + (f" [{entry}]" if entry else "")
        super().__init__(f"{where}: {message}")


class ConfigError(TalError, ValueError):
    """A configuration is invalid; the message lists each field path, bad value and allowed values."""


class PluginError(TalError):
    """A plugin failed to load or registered something invalid."""


class DuplicateComponentError(PluginError):
    """Two plugins registered the same component name for the same kind."""
