"""Class lists: label name ↔ integer id.

A class-list file holds either one name per line (the id is the line index, 0-based), or
``idx name`` lines (a space or a tab after the id, as in MS-TCN's ``mapping.txt`` and ActionFormer's
``tools/ego4d_label_map.txt``). In the ``idx name`` form a name wrapped in double quotes is unquoted:
Ego4D's label map quotes the names that contain commas (``000\t"clean_/_repair_..._(mower,_trimmer_etc.)"``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tal.core.errors import DataFormatError
from tal.core.formats._common import PathLike, read_text

_IDX_LINE = re.compile(r"^(\d+)[ \t]+(\S.*?)\s*$")


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


def read_class_list(path: PathLike) -> dict[str, int]:
    """Read a class-list file into ``{name: id}`` (see the module docs for the two layouts).

    Names and ids must be unique and ids non-negative; ids may have gaps (EPIC-Kitchens nouns have
    classes without instances). Blank lines are errors except at the end of the file.
    """
    text = read_text(path)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataFormatError(path, "empty class list")
    indexed = all(_IDX_LINE.match(line) for line in lines)
    out: dict[str, int] = {}
    seen_ids: dict[int, int] = {}
    for lineno, line in enumerate(lines, start=1):
        entry = f"line {lineno}"
        if not line.strip():
            raise DataFormatError(path, "blank line inside the class list", entry)
        if indexed:
            m = _IDX_LINE.match(line)
            assert m is not None
            idx, name = int(m.group(1)), _unquote(m.group(2))
        else:
            idx, name = lineno - 1, line.strip()
        if name in out:
            raise DataFormatError(path, f"class name {name!r} also on line {seen_ids[out[name]]}", entry)
        if idx in seen_ids:
            raise DataFormatError(path, f"class id {idx} also on line {seen_ids[idx]}", entry)
        out[name] = idx
        seen_ids[idx] = lineno
    return out


def class_map(classes: Any, source: str = "classes") -> dict[str, int]:
    """Normalise a class specification to ``{name: id}``.

    ``classes`` is a sequence of names (id = position), a ``{name: id}`` or ``{id: name}`` mapping,
    a class-list file path, or anything with a ``label_to_id`` attribute (e.g.
    :class:`~tal.core.formats.annotations.AnnotationSet`).
    """
    if hasattr(classes, "label_to_id"):
        return dict(classes.label_to_id)
    if isinstance(classes, (str, bytes)) or hasattr(classes, "__fspath__"):
        return read_class_list(classes)
    if isinstance(classes, Mapping):
        items = list(classes.items())
        if items and all(isinstance(k, int) and not isinstance(k, bool) for k, _ in items):
            items = [(v, k) for k, v in items]
        pairs = items
    elif isinstance(classes, Sequence):
        pairs = [(name, i) for i, name in enumerate(classes)]
    else:
        raise TypeError(f"{source}: expected class names, a mapping or a file, got {type(classes).__name__}")
    out: dict[str, int] = {}
    ids: set[int] = set()
    for name, idx in pairs:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{source}: class names must be non-empty strings, got {name!r}")
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise ValueError(f"{source}: class ids must be non-negative integers, got {idx!r} for {name!r}")
        if name in out or idx in ids:
            raise ValueError(f"{source}: class {name!r} / id {idx} is listed twice")
        out[name] = idx
        ids.add(idx)
    return out
