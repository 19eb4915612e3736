"""Helpers shared by the readers: file access, strict JSON, value checks, close-name hints."""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tal.core.errors import DataFormatError

PathLike = str | os.PathLike[str]


def require_file(path: PathLike) -> Path:
    """``path`` as a :class:`Path`; :class:`DataFormatError` if it is missing or not a regular file."""
    p = Path(path)
    if not p.exists():
        hint = close_names_hint(p.name, _listdir(p.parent))
        raise DataFormatError(p, f"file not found{hint}")
    if not p.is_file():
        raise DataFormatError(p, "not a regular file")
    return p


def read_text(path: PathLike) -> str:
    """The file decoded as UTF-8; errors name the file (and the byte offset of bad UTF-8)."""
    p = require_file(path)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(p, f"not UTF-8 text (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise DataFormatError(p, f"cannot read: {exc.strerror or exc}") from None


def _listdir(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def close_names(name: str, options: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` entries of ``options`` that look like ``name`` (difflib ratio ≥ 0.6)."""
    return difflib.get_close_matches(name, list(options), n=n, cutoff=0.6)


def close_names_hint(name: str, options: Iterable[str]) -> str:
    """``"; close names: 'a', 'b'"`` or ``""``."""
    close = close_names(name, options)
    return "; close names: " + ", ".join(repr(c) for c in close) if close else ""


class JsonObject(dict):  # type: ignore[type-arg]
    """A decoded JSON object that remembers keys that occurred more than once (the last value wins)."""

    duplicates: tuple[str, ...] = ()


def _object_hook(pairs: list[tuple[str, Any]]) -> JsonObject:
    obj = JsonObject()
    dups: list[str] = []
    for key, value in pairs:
        if key in obj and key not in dups:
            dups.append(key)
        obj[key] = value
    if dups:
        obj.duplicates = tuple(dups)
    return obj


def load_json(path: PathLike) -> Any:
    """Parse a JSON file; malformed JSON is reported with line and column.

    Objects are :class:`JsonObject` (see :func:`check_no_duplicates`); ``NaN``/``Infinity`` literals
    are parsed so that the validators can report them with the entry that holds them.
    """
    p = require_file(path)
    text = read_text(p)
    try:
        return json.loads(text, object_pairs_hook=_object_hook)
    except json.JSONDecodeError as exc:
        raise DataFormatError(p, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise DataFormatError(p, "malformed JSON: nested too deeply") from None


def check_no_duplicates(path: PathLike, obj: Mapping[str, Any], entry: str, what: str = "key") -> None:
    """Raise if the JSON object at ``entry`` repeated a key (JSON parsers silently keep the last one)."""
    dups = getattr(obj, "duplicates", ())
    if dups:
        raise DataFormatError(path, f"duplicate {what} {dups[0]!r} (it occurs more than once)", entry)


def type_name(value: Any) -> str:
    """JSON-ish name of a Python value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def as_number(path: PathLike, value: Any, entry: str) -> float:
    """``value`` as a finite float; booleans, strings, NaN and ±Infinity are errors."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataFormatError(path, f"expected a number, got {type_name(value)} {value!r}", entry)
    x = float(value)
    if not math.isfinite(x):
        raise DataFormatError(path, f"not a finite number: {value!r}", entry)
    return x


def as_int(path: PathLike, value: Any, entry: str, minimum: int | None = 0) -> int:
    """``value`` as an int (JSON integers only; ``3.0`` and ``true`` are errors)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataFormatError(path, f"expected an integer, got {type_name(value)} {value!r}", entry)
    if minimum is not None and value < minimum:
        raise DataFormatError(path, f"must be ≥ {minimum}, got {value}", entry)
    return int(value)


def fmt_num(x: float) -> str:
    """A float as Python/JSON would print it (``12.1``, ``15.0``), for messages."""
    return repr(float(x))


# ---------------------------------------------------------------------------------------------
# Validators of JSON values; every error names the file and the entry
# ---------------------------------------------------------------------------------------------
def require_object(src: str, value: Any, entry: str, what: str = "key") -> Mapping[str, Any]:
    """``value`` if it is a JSON object without repeated keys."""
    if not isinstance(value, Mapping):
        raise DataFormatError(src, f"expected an object, got {type_name(value)}", entry)
    check_no_duplicates(src, value, entry, what)
    return value


def require_key(src: str, obj: Mapping[str, Any], key: str, entry: str) -> Any:
    """``obj[key]``; a missing key is an error listing the keys present."""
    if key not in obj:
        have = ", ".join(sorted(obj)) or "none"
        raise DataFormatError(src, f"missing key {key!r} (keys: {have})", entry)
    return obj[key]


def require_list(src: str, value: Any, entry: str) -> list[Any]:
    """``value`` if it is a JSON array."""
    if not isinstance(value, list):
        raise DataFormatError(src, f"expected an array, got {type_name(value)}", entry)
    return value


def require_pair(src: str, value: Any, entry: str) -> tuple[float, float]:
    """A ``[start, end]`` pair of finite, non-negative numbers with ``end >= start``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise DataFormatError(src, f"expected [start, end], got {json.dumps(value, default=repr)}", entry)
    start = as_number(src, value[0], f"{entry}[0]")
    end = as_number(src, value[1], f"{entry}[1]")
    if start < 0 or end < 0:
        raise DataFormatError(src, f"negative time in [{fmt_num(start)}, {fmt_num(end)}]", entry)
    if end < start:
        raise DataFormatError(src, f"end {fmt_num(end)} < start {fmt_num(start)}", entry)
    return start, end


def require_positive(src: str, value: Any, entry: str) -> float:
    """``value`` as a number > 0."""
    x = as_number(src, value, entry)
    if x <= 0:
        raise DataFormatError(src, f"must be > 0, got {fmt_num(x)}", entry)
    return x


def dump_json(path: PathLike, data: Any, indent: int | None = None) -> None:
    """Write ``data`` as JSON atomically (no NaN/Infinity literals, UTF-8, trailing newline)."""
    from tal.core.formats.atomic import atomic_open

    try:
        with atomic_open(path, "w") as f:
            json.dump(data, f, indent=indent, allow_nan=False, ensure_ascii=False)
            f.write("\n")
    except (TypeError, ValueError) as exc:
        raise DataFormatError(path, f"cannot write JSON: {exc}") from exc
