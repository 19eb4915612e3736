"""MS-TCN action-segmentation files (layout of yabufarha/ms-tcn's data release).

* ``groundTruth/<video>.txt``: one label name per frame and line, ``\\n`` after the last one.
* ``mapping.txt``: ``idx name`` per line, ids ``0..K-1`` (Breakfast: ``0 SIL`` ... ``47 stir_tea``).
* ``splits/<name>.bundle``: one ground-truth file name (``<video>.txt``) per line.
* predictions: MS-TCN's ``predict()`` writes ``results/<video>`` (no extension) holding the line
  ``### Frame level recognition: ###`` and then one line of space-separated label names with no
  final newline; its ``eval.py`` reads the second line. Plain one-label-per-line files (like the
  ground truth) are read too.

Surrounding whitespace and ``\\r`` of a line are ignored; blank lines (other than at the end of
the file) are errors, as MS-TCN's loaders would fail on them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch

from tal.core.errors import DataFormatError
from tal.core.formats._common import PathLike, close_names_hint, read_text
from tal.core.formats.atomic import atomic_write_text
from tal.core.formats.labels import class_map

PREDICTION_HEADER = "### Frame level recognition: ###"
_MAPPING_LINE = re.compile(r"^(-?\d+)\s+(\S+)$")


def _lines(path: PathLike) -> list[str]:
    """Stripped lines; the file must hold at least one, and no blank line before the last one."""
    lines = [line.strip() for line in read_text(path).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise DataFormatError(path, "empty file")
    for i, line in enumerate(lines, start=1):
        if not line:
            raise DataFormatError(path, "blank line", f"line {i}")
    return lines


def read_mapping(path: PathLike) -> dict[str, int]:
    """Read ``mapping.txt`` into ``{name: id}`` ordered by id; ids must be exactly ``0..K-1``, names unique."""
    out: dict[str, int] = {}
    line_of_id: dict[int, int] = {}
    for i, line in enumerate(_lines(path), start=1):
        m = _MAPPING_LINE.match(line)
        if m is None:
            raise DataFormatError(path, f"expected 'idx name', got {line!r}", f"line {i}")
        idx, name = int(m.group(1)), m.group(2)
        if name in out:
            raise DataFormatError(path, f"class {name!r} is also on line {line_of_id[out[name]]}", f"line {i}")
        if idx in line_of_id:
            raise DataFormatError(path, f"id {idx} is also on line {line_of_id[idx]}", f"line {i}")
        out[name] = idx
        line_of_id[idx] = i
    k = len(out)
    bad = sorted(i for i in line_of_id if not 0 <= i < k)
    if bad:
        missing = sorted(set(range(k)) - set(line_of_id))
        raise DataFormatError(
            path,
            f"ids must be 0..{k - 1}: id {bad[0]} is out of range, id {missing[0]} is missing",
            f"line {line_of_id[bad[0]]}",
        )
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def _as_mapping(mapping: Any) -> dict[str, int]:
    if isinstance(mapping, (str, os.PathLike)):
        return read_mapping(mapping)
    return class_map(mapping, "mapping")


def write_mapping(path: PathLike, classes: Sequence[str] | Mapping[str, int]) -> None:
    """Write ``mapping.txt`` (``idx name`` lines by id), atomically; ids must be ``0..K-1``."""
    m = class_map(classes, "mapping")
    if sorted(m.values()) != list(range(len(m))):
        raise DataFormatError(path, f"class ids must be 0..{len(m) - 1}, got {sorted(m.values())}")
    for name in m:
        if any(ch.isspace() for ch in name):
            raise DataFormatError(path, f"class name {name!r} contains whitespace")
    atomic_write_text(path, "".join(f"{i} {n}\n" for n, i in sorted(m.items(), key=lambda kv: kv[1])))


def _to_ids(path: PathLike, names: list[str], mapping: dict[str, int], entries: Sequence[str] | None) -> np.ndarray:
    ids = np.fromiter((mapping.get(n, -1) for n in names), dtype=np.int64, count=len(names))
    bad = np.flatnonzero(ids < 0)
    if bad.size:
        i = int(bad[0])
        label = names[i]
        entry = entries[i] if entries is not None else f"line {i + 1}"
        raise DataFormatError(
            path, f"unknown label {label!r} (not in the mapping){close_names_hint(label, mapping)}", entry
        )
    return ids


def read_frame_names(path: PathLike) -> list[str]:
    """Per-frame label names of a ground-truth (one per line) or prediction file, unmapped."""
    lines = _lines(path)
    if lines[0] != PREDICTION_HEADER:
        return lines
    if len(lines) < 2:
        raise DataFormatError(path, "no labels after the '### Frame level recognition: ###' line", "line 2")
    if len(lines) > 2:
        raise DataFormatError(path, "expected one line of space-separated labels after the header", "line 3")
    return lines[1].split()


def read_ground_truth(path: PathLike, mapping: Any) -> np.ndarray:
    """``(T,)`` int64 class ids of a ground-truth file (one label name per line).

    ``mapping`` is a ``mapping.txt`` path, ``{name: id}`` or a list of names. An unknown label is an
    error naming the line and close names.
    """
    m = _as_mapping(mapping)
    return _to_ids(path, _lines(path), m, None)


def read_prediction(path: PathLike, mapping: Any) -> np.ndarray:
    """``(T,)`` int64 class ids of a prediction file, in MS-TCN's header style or one label per line."""
    m = _as_mapping(mapping)
    lines = _lines(path)
    if lines[0] != PREDICTION_HEADER:
        return _to_ids(path, lines, m, None)
    names = read_frame_names(path)
    return _to_ids(path, names, m, [f"line 2, frame {i}" for i in range(len(names))])


def _names(path: PathLike, labels: Any, mapping: Any) -> list[str]:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    seq = list(labels.tolist() if isinstance(labels, np.ndarray) else labels)
    if not seq:
        raise DataFormatError(path, "no frames to write")
    if all(isinstance(x, str) for x in seq):
        names = [str(x) for x in seq]
        known = set(_as_mapping(mapping)) if mapping is not None else None
        for i, n in enumerate(names):
            if (known is not None and n not in known) or not n or any(ch.isspace() for ch in n):
                raise DataFormatError(path, f"invalid label {n!r} at frame {i}")
        return names
    if mapping is None:
        raise DataFormatError(path, "integer labels need the mapping to be written as names")
    id_to_name = {i: n for n, i in _as_mapping(mapping).items()}
    out = []
    for i, x in enumerate(seq):
        if isinstance(x, bool) or not isinstance(x, int) or x not in id_to_name:
            raise DataFormatError(path, f"label {x!r} at frame {i} is not an id of the mapping")
        out.append(id_to_name[x])
    return out


def write_ground_truth(path: PathLike, labels: Any, mapping: Any = None) -> None:
    """Write one label name per line (``\\n`` after each), atomically.

    ``labels``: ``(T,)`` int ids (needs ``mapping``) or a list of names.
    """
    atomic_write_text(path, "".join(f"{n}\n" for n in _names(path, labels, mapping)))


def write_prediction(
    path: PathLike, labels: Any, mapping: Any = None, *, style: Literal["mstcn", "plain"] = "mstcn"
) -> None:
    """Write frame predictions, atomically.

    ``style="mstcn"`` writes MS-TCN's ``predict()`` format (header line, then the space-separated
    names, no final newline); ``"plain"`` writes one name per line like the ground truth.
    """
    if style not in ("mstcn", "plain"):
        raise ValueError(f"style must be 'mstcn' or 'plain', got {style!r}")
    names = _names(path, labels, mapping)
    text = f"{PREDICTION_HEADER}\n{' '.join(names)}" if style == "mstcn" else "".join(f"{n}\n" for n in names)
    atomic_write_text(path, text)


def read_bundle(path: PathLike) -> list[str]:
    """The entries of a split bundle (``<video>.txt`` per line), duplicates being errors."""
    entries = _lines(path)
    seen: dict[str, int] = {}
    for i, name in enumerate(entries, start=1):
        if name in seen:
            raise DataFormatError(path, f"{name!r} is listed twice (also on line {seen[name]})", f"line {i}")
        seen[name] = i
    return entries


def write_bundle(path: PathLike, names: Iterable[str]) -> None:
    """Write a split bundle, one name per line, atomically."""
    items = list(names)
    if not items:
        raise DataFormatError(path, "no videos to write")
    atomic_write_text(path, "".join(f"{n}\n" for n in items))


def video_id_of(entry: str) -> str:
    """Video id of a bundle entry: its file name without ``.txt``.

    ``P03_cam01_P03_cereals.txt`` → ``P03_cam01_P03_cereals`` (MS-TCN cuts at the first dot instead).
    """
    name = entry.replace("\\", "/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".txt") else name
