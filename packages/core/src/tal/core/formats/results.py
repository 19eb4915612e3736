"""ActivityNet-style detection results JSON (the ActivityNet evaluator's format; ActionFormer writes
integer labels)::


    {"version": "VERSION 1.3", "results": {video_id: [{"segment": [s, e], "label": "name" or id,
     "score": x}, ...]}, "external_data": {"used": false, "details": ""}}

Predictions are read as leniently as the reference evaluators read them (ActivityNet's
``Evaluation/eval_detection.py`` and ActionFormer's ``ANETdetection``), because published result
files and regression-based detectors produce segments those evaluators score as they are:

* accepted and scored as given, with one warning line of counts (:attr:`DetectionResults.oddities`):
  a start before 0 s, an end before the start, a zero-length segment, a segment given with more
  than two numbers (the first two are used), numbers written as strings (``"12.5"``), and, checked
  by ``tal score loc`` against the ground truth, an end past the video's duration;
* refused, as the reference refuses them (it raises, or its scores become meaningless): a missing
  ``results``/``segment``/``label``/``score`` key, a segment with fewer than two entries, a time or
  score that is not a number, NaN or infinite, a label that is not a known class.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from tal.core.errors import DataFormatError
from tal.core.formats._common import (
    PathLike,
    as_int,
    as_number,
    close_names_hint,
    dump_json,
    load_json,
    require_key,
    require_list,
    type_name,
)
from tal.core.formats.labels import class_map
from tal.core.types import Segments


@dataclass
class DetectionResults:
    """Detections per video: :class:`Segments` in seconds with class ids and scores."""

    videos: dict[str, Segments]
    version: Any = None
    external_data: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    #: counts of accepted oddities (see the module docstring), e.g. ``{"start before 0 s": 12}``
    oddities: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.videos)

    def oddity_report(self) -> str | None:
        """One line of counts of the oddities read as given, or ``None`` when there were none."""
        if not self.oddities:
            return None
        parts = ", ".join(f"{n} {ODDITY_TEXT.get(k, k)}" for k, n in self.oddities.items())
        return f"{self.source or '<results>'}: {parts}; scored as given, as the reference evaluators do"


#: how :meth:`DetectionResults.oddity_report` words each kind of oddity
ODDITY_TEXT = {
    "negative_start": "predictions start before 0 s",
    "inverted": "predictions end before they start",
    "zero_length": "predictions have zero length",
    "extra_numbers": "segments have more than two numbers (the first two are used)",
    "string_numbers": "times are written as strings",
    "past_duration": "predictions end after their video's duration",
    "duplicate_keys": "keys occur twice in an object (the last one is used, as json.load does)",
}


def _count(oddities: dict[str, int], kind: str, n: int = 1) -> None:
    if n:
        oddities[kind] = oddities.get(kind, 0) + n


def _time(src: str, value: Any, entry: str, oddities: dict[str, int]) -> float:
    """A time as the reference reads it (``float(value)``), refusing what would make it fail or NaN."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise DataFormatError(src, f"expected a number, got string {value!r}", entry) from None
        if not math.isfinite(number):
            raise DataFormatError(src, f"not a finite number: {value!r}", entry)
        _count(oddities, "string_numbers")
        return number
    return as_number(src, value, entry)


def prediction_segment(src: str, value: Any, entry: str, oddities: dict[str, int]) -> tuple[float, float]:
    """``[start, end]`` of a prediction, read as the reference evaluators read it: any order, any sign."""
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise DataFormatError(src, f"expected [start, end], got {json.dumps(value, default=repr)[:80]}", entry)
    if len(value) > 2:
        _count(oddities, "extra_numbers")
    start = _time(src, value[0], f"{entry}[0]", oddities)
    end = _time(src, value[1], f"{entry}[1]", oddities)
    if start < 0:
        _count(oddities, "negative_start")
    if end < start:
        _count(oddities, "inverted")
    elif end == start:
        _count(oddities, "zero_length")
    return start, end


def read_results(path: PathLike, *, classes: Any = None) -> DetectionResults:
    """Read a detection-results file.

    ``classes`` (an :class:`AnnotationSet`, class names, ``{name: id}`` or a class-list file) maps
    labels: a string label must be a class name, an integer label a class id. Without ``classes``
    integer labels are taken as they are and string labels are an error.
    """
    return parse_results(load_json(path), source=str(path), classes=classes)


def parse_results(data: Any, *, source: str = "<results>", classes: Any = None) -> DetectionResults:
    """:func:`read_results` on already-decoded JSON; errors name ``source``.

    Oddities the reference evaluators score as given are counted in ``oddities`` (see the module
    docstring), not refused.
    """
    src = source
    label_to_id = class_map(classes, f"{src}: classes") if classes is not None else None
    known_ids = set(label_to_id.values()) if label_to_id is not None else None
    oddities: dict[str, int] = {}
    root = _lenient_object(src, data, "<root>", oddities)
    results = _lenient_object(src, require_key(src, root, "results", "<root>"), "results", oddities)
    videos: dict[str, Segments] = {}
    for vid, value in results.items():
        ventry = f"results.{vid}"
        items = require_list(src, value, ventry)
        segs, labels, scores = [], [], []
        for i, item in enumerate(items):
            entry = f"{ventry}[{i}]"
            det = _lenient_object(src, item, entry, oddities)
            segs.append(prediction_segment(src, require_key(src, det, "segment", entry), f"{entry}.segment", oddities))
            labels.append(
                _result_label(src, require_key(src, det, "label", entry), f"{entry}.label", label_to_id, known_ids)
            )
            scores.append(as_number(src, require_key(src, det, "score", entry), f"{entry}.score"))
        videos[vid] = Segments(
            torch.tensor(segs, dtype=torch.float64).reshape(-1, 2),
            torch.tensor(labels, dtype=torch.int64),
            torch.tensor(scores, dtype=torch.float64),
        )
    extra = {k: v for k, v in root.items() if k not in ("results", "version", "external_data")}
    return DetectionResults(videos, root.get("version"), root.get("external_data"), extra, src, oddities)


def _lenient_object(src: str, value: Any, entry: str, oddities: dict[str, int]) -> Mapping[str, Any]:
    """A JSON object; repeated keys are counted (the last value is kept, as ``json.load`` keeps it)."""
    if not isinstance(value, Mapping):
        raise DataFormatError(src, f"expected an object, got {type_name(value)}", entry)
    _count(oddities, "duplicate_keys", len(getattr(value, "duplicates", ())))
    return value


def _result_label(
    src: str, label: Any, entry: str, label_to_id: dict[str, int] | None, known_ids: set[int] | None
) -> int:
    if isinstance(label, str):
        if label_to_id is None:
            raise DataFormatError(src, f"label {label!r} is a name but no classes were given to map it", entry)
        if label not in label_to_id:
            raise DataFormatError(src, f"unknown label {label!r}{close_names_hint(label, label_to_id)}", entry)
        return label_to_id[label]
    idx = as_int(src, label, entry)
    if known_ids is not None and idx not in known_ids:
        top = max(known_ids) if known_ids else -1
        raise DataFormatError(src, f"unknown label id {idx} (class ids: 0..{top}, {len(known_ids)} classes)", entry)
    return idx


def results_to_json(
    results: Mapping[str, Segments] | DetectionResults,
    *,
    classes: Any = None,
    label_format: Literal["name", "id"] | None = None,
    version: Any = None,
    external_data: Any = None,
) -> dict[str, Any]:
    """The JSON object :func:`write_results` writes."""
    videos = results.videos if isinstance(results, DetectionResults) else results
    if isinstance(results, DetectionResults):
        version = results.version if version is None else version
        external_data = results.external_data if external_data is None else external_data
    fmt = label_format or ("name" if classes is not None else "id")
    if fmt not in ("name", "id"):
        raise ValueError(f"label_format must be 'name' or 'id', got {fmt!r}")
    id_to_name: dict[int, str] = {}
    if classes is not None:
        id_to_name = {i: n for n, i in class_map(classes).items()}
    elif fmt == "name":
        raise ValueError("label_format='name' needs classes")
    out: dict[str, list[dict[str, Any]]] = {}
    for vid, segs in videos.items():
        if segs.scores is None:
            raise ValueError(f"video {vid!r}: detections need scores")
        dets = []
        for (s, e), label, score in zip(
            segs.segments.tolist(), segs.labels.tolist(), segs.scores.tolist(), strict=True
        ):
            if id_to_name and label not in id_to_name:
                raise ValueError(f"video {vid!r}: label id {label} is not one of the classes")
            lab: str | int = id_to_name[label] if fmt == "name" else int(label)
            dets.append({"segment": [float(s), float(e)], "label": lab, "score": float(score)})
        out[str(vid)] = dets
    return {
        "version": "VERSION 1.3" if version is None else version,
        "results": out,
        "external_data": {"used": False, "details": ""} if external_data is None else external_data,
    }


def write_results(
    path: PathLike,
    results: Mapping[str, Segments] | DetectionResults,
    *,
    classes: Any = None,
    label_format: Literal["name", "id"] | None = None,
    version: Any = None,
    external_data: Any = None,
    indent: int | None = None,
) -> None:
    """Write detections as result JSON, atomically.

    Labels are written as class names when ``classes`` is given (``label_format="name"``, the
    ActivityNet evaluator's form) or as integer ids (``"id"``, ActionFormer's form). ``version``
    defaults to ``"VERSION 1.3"`` and ``external_data`` to ``{"used": false, "details": ""}``, the
    fields the ActivityNet evaluator requires.
    """
    try:
        data = results_to_json(
            results, classes=classes, label_format=label_format, version=version, external_data=external_data
        )
    except ValueError as exc:
        raise DataFormatError(path, str(exc)) from exc
    dump_json(path, data, indent)
