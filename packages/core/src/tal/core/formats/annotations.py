"""ActivityNet-style annotation and result JSON (THUMOS14, ActivityNet 1.3, EPIC-Kitchens-100, Ego4D-MQ).

Annotation file, as ActionFormer's loaders read it::

    {"version": ..., "database": {video_id: {
        "subset": "validation", "duration": 171.3, "fps": 30.0,
        "annotations": [{"segment": [s, e], "label": "BaseballPitch", "label_id": 0,
                         "segment(frames)": [fs, fe]}, ...]}}}

Variations handled (sources: ``libs/datasets/{thumos14,anet,epic_kitchens,ego4d}.py`` and
``tools/convert_ego4d_trainval.py`` of happyharrycn/actionformer_release, and
``Evaluation/eval_detection.py`` of activitynet/ActivityNet):

* ``fps`` is optional (ActivityNet 1.3 has none; ActionFormer then needs ``default_fps``) and so is
  ``duration`` (ActionFormer's THUMOS/EPIC/Ego4D loaders fall back to a huge value).
* ``label_id`` is optional: ActivityNet 1.3 only names labels. The ids then come from ``classes``
  (a list, mapping or class-list file) if given, otherwise from the sorted label names. If some
  annotations carry ``label_id`` and others do not, that is an error.
* ``subset`` is matched case-insensitively by :meth:`AnnotationSet.filter` (ActionFormer lowercases
  it; files use both ``"Validation"`` and ``"validation"``).
* ``segment(frames)`` (THUMOS14, Ego4D as converted by ActionFormer) is kept and written back.
* Video-level fields other than subset/duration/fps/annotations (``url``, ``resolution``, ...) and
  top-level fields other than ``database`` (``taxonomy``, ...) are kept and written back verbatim;
  annotation fields other than segment/label/label_id/segment(frames) are dropped.
* Ego4D's own ``moments_*.json`` layout is *not* this format; ActionFormer converts it (clip-level
  videos, primary labels, segments shifted to the feature grid, actions < 0.25 s dropped) before use.
* THUMOS14 labels some instances ``"Ambiguous"``. ActionFormer's ``thumos14.json`` leaves them out
  (3358 test instances of 3454); other conversions keep them, with ``label_id`` -1. Annotations whose
  label is in ``ignore_labels`` (default ``("Ambiguous",)``) are validated, then kept aside in
  :attr:`VideoAnnotation.ignored` (written back unchanged) instead of becoming classes.

Zero-length segments (``end == start``; ActivityNet 1.3 has a few, e.g. ``[0, 0]``, see
activitynet/ActivityNet#56) are valid. ActionFormer's loaders keep them and its evaluator counts them
as ground truth, so the default is ``zero_length="keep"``; ``"drop"`` removes them and ``"error"``
rejects them. Segments that run past ``duration`` are kept as they are (THUMOS14 has some).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from tal.core.errors import DataFormatError
from tal.core.formats._common import (
    PathLike,
    as_int,
    close_names_hint,
    dump_json,
    fmt_num,
    load_json,
    require_key,
    require_list,
    require_object,
    require_pair,
    require_positive,
)
from tal.core.formats.labels import class_map
from tal.core.types import Segments

ZeroLength = Literal["keep", "drop", "error"]
DEFAULT_IGNORE_LABELS: tuple[str, ...] = ("Ambiguous",)
_VIDEO_KEYS = ("subset", "duration", "fps", "annotations")


@dataclass
class VideoAnnotation:
    """One video of an annotation file.

    Attributes:
        segments: ground truth in seconds; ``labels`` are class ids of the owning :class:`AnnotationSet`.
        frames: ``(N, 2)`` float64 ``segment(frames)`` values, a NaN row where an annotation had none;
            ``None`` if no annotation of the video had them.
        ignored: raw annotation objects whose label was ignored (e.g. THUMOS ``"Ambiguous"``).
        extra: other video-level fields, written back verbatim.
    """

    video_id: str
    subset: str
    segments: Segments = field(default_factory=Segments.empty)
    duration: float | None = None
    fps: float | None = None
    frames: torch.Tensor | None = None
    ignored: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnnotationSet:
    """The videos of an annotation file and its classes (``classes``: id → name, ids may have gaps)."""

    videos: dict[str, VideoAnnotation]
    classes: dict[int, str]
    version: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def label_to_id(self) -> dict[str, int]:
        return {name: idx for idx, name in self.classes.items()}

    @property
    def num_classes(self) -> int:
        """``max id + 1`` (0 without classes)."""
        return max(self.classes) + 1 if self.classes else 0

    @property
    def class_names(self) -> list[str]:
        """Names by id, ``""`` for ids no class uses."""
        return [self.classes.get(i, "") for i in range(self.num_classes)]

    @property
    def subsets(self) -> list[str]:
        return sorted({v.subset for v in self.videos.values()})

    @property
    def num_segments(self) -> int:
        return sum(len(v.segments) for v in self.videos.values())

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[VideoAnnotation]:
        return iter(self.videos.values())

    def __contains__(self, video_id: object) -> bool:
        return video_id in self.videos

    def __getitem__(self, video_id: str) -> VideoAnnotation:
        return self.videos[video_id]

    def filter(
        self, subset: str | Iterable[str] | None = None, video_ids: Iterable[str] | None = None
    ) -> AnnotationSet:
        """The videos of ``subset`` (one name or several, case-insensitive) and/or in ``video_ids``.

        The classes are kept, so ids stay valid. Unknown subset names are an error listing the known ones.
        """
        videos = self.videos
        if subset is not None:
            wanted = {subset.lower()} if isinstance(subset, str) else {s.lower() for s in subset}
            known = {v.subset.lower() for v in videos.values()}
            unknown = sorted(wanted - known)
            if unknown:
                raise DataFormatError(
                    self.source or "<annotations>",
                    f"no video in subset {unknown[0]!r}; subsets: {', '.join(self.subsets) or 'none'}",
                )
            videos = {k: v for k, v in videos.items() if v.subset.lower() in wanted}
        if video_ids is not None:
            keep = set(video_ids)
            videos = {k: v for k, v in videos.items() if k in keep}
        return AnnotationSet(dict(videos), dict(self.classes), self.version, dict(self.extra), self.source)


@dataclass
class _RawAnn:
    entry: str
    label: str
    label_id: int | None
    segment: tuple[float, float]
    frames: tuple[float, float] | None


# ---------------------------------------------------------------------------------------------
# Read
# ---------------------------------------------------------------------------------------------
def read_annotations(
    path: PathLike,
    *,
    classes: Any = None,
    ignore_labels: Iterable[str] = DEFAULT_IGNORE_LABELS,
    zero_length: ZeroLength = "keep",
) -> AnnotationSet:
    """Read an ActivityNet-style annotation file (see the module docs for every rule).

    Args:
        classes: class names (list, ``{name: id}``, class-list file); labels outside it are errors.
        ignore_labels: labels kept aside in :attr:`VideoAnnotation.ignored` instead of becoming classes.
        zero_length: what to do with ``end == start`` segments: ``"keep"``, ``"drop"`` or ``"error"``.
    """
    return parse_annotations(
        load_json(path), source=str(path), classes=classes, ignore_labels=ignore_labels, zero_length=zero_length
    )


def parse_annotations(
    data: Any,
    *,
    source: str = "<annotations>",
    classes: Any = None,
    ignore_labels: Iterable[str] = DEFAULT_IGNORE_LABELS,
    zero_length: ZeroLength = "keep",
) -> AnnotationSet:
    """:func:`read_annotations` on already-decoded JSON; errors name ``source``."""
    if zero_length not in ("keep", "drop", "error"):
        raise ValueError(f"zero_length must be 'keep', 'drop' or 'error', got {zero_length!r}")
    src = source
    root = require_object(src, data, "<root>")
    database = require_object(src, require_key(src, root, "database", "<root>"), "database", "video id")
    ignore = set(ignore_labels)
    given = class_map(classes, f"{src}: classes") if classes is not None else None

    parsed: list[tuple[str, Mapping[str, Any], list[_RawAnn], list[dict[str, Any]]]] = []
    for vid, value in database.items():
        ventry = f"database.{vid}"
        video = require_object(src, value, ventry)
        raw_anns = require_list(src, video.get("annotations", []), f"{ventry}.annotations")
        anns: list[_RawAnn] = []
        ignored: list[dict[str, Any]] = []
        for i, item in enumerate(raw_anns):
            aentry = f"{ventry}.annotations[{i}]"
            ann = require_object(src, item, aentry)
            label = require_key(src, ann, "label", aentry)
            if not isinstance(label, str) or not label:
                raise DataFormatError(src, f"expected a non-empty string, got {label!r}", f"{aentry}.label")
            seg = require_pair(src, require_key(src, ann, "segment", aentry), f"{aentry}.segment")
            if label in ignore:
                ignored.append(dict(ann))
                continue
            if seg[1] == seg[0]:
                if zero_length == "error":
                    raise DataFormatError(
                        src, f"zero-length segment [{fmt_num(seg[0])}, {fmt_num(seg[1])}]", f"{aentry}.segment"
                    )
                if zero_length == "drop":
                    continue
            label_id = as_int(src, ann["label_id"], f"{aentry}.label_id") if "label_id" in ann else None
            frames = (
                require_pair(src, ann["segment(frames)"], f"{aentry}.segment(frames)")
                if "segment(frames)" in ann
                else None
            )
            anns.append(_RawAnn(aentry, label, label_id, seg, frames))
        parsed.append((vid, video, anns, ignored))

    all_anns = [a for _, _, anns, _ in parsed for a in anns]
    label_to_id = _label_ids(src, all_anns, given)

    videos: dict[str, VideoAnnotation] = {}
    for vid, video, anns, ignored in parsed:
        ventry = f"database.{vid}"
        subset = require_key(src, video, "subset", ventry)
        if not isinstance(subset, str) or not subset:
            raise DataFormatError(src, f"expected a non-empty string, got {subset!r}", f"{ventry}.subset")
        duration = require_positive(src, video["duration"], f"{ventry}.duration") if "duration" in video else None
        fps = require_positive(src, video["fps"], f"{ventry}.fps") if "fps" in video else None
        segs = Segments(
            torch.tensor([a.segment for a in anns], dtype=torch.float64).reshape(-1, 2),
            torch.tensor([label_to_id[a.label] for a in anns], dtype=torch.int64),
        )
        frame_segs: torch.Tensor | None = None
        if any(a.frames is not None for a in anns):
            nan = (float("nan"), float("nan"))
            frame_segs = torch.tensor([a.frames or nan for a in anns], dtype=torch.float64).reshape(-1, 2)
        extra = {k: v for k, v in video.items() if k not in _VIDEO_KEYS}
        videos[vid] = VideoAnnotation(vid, subset, segs, duration, fps, frame_segs, ignored, extra)

    extra = {k: v for k, v in root.items() if k not in ("database", "version")}
    return AnnotationSet(videos, {i: n for n, i in label_to_id.items()}, root.get("version"), extra, src)


def _label_ids(src: str, anns: list[_RawAnn], given: dict[str, int] | None) -> dict[str, int]:
    """``{label: id}`` from the caller's classes, the file's ``label_id`` fields, or the sorted names."""
    if given is not None:
        for a in anns:
            if a.label not in given:
                hint = close_names_hint(a.label, given)
                raise DataFormatError(
                    src, f"unknown label {a.label!r} (not in the given classes){hint}", f"{a.entry}.label"
                )
            if a.label_id is not None and a.label_id != given[a.label]:
                raise DataFormatError(
                    src,
                    f"label_id {a.label_id} of {a.label!r} disagrees with the given classes ({given[a.label]})",
                    f"{a.entry}.label_id",
                )
        return dict(given)
    with_id = [a for a in anns if a.label_id is not None]
    if not with_id:
        return {name: i for i, name in enumerate(sorted({a.label for a in anns}))}
    if len(with_id) != len(anns):
        missing = next(a for a in anns if a.label_id is None)
        raise DataFormatError(
            src, f"missing key 'label_id' (other annotations have one, e.g. {with_id[0].entry})", missing.entry
        )
    by_name: dict[str, tuple[int, str]] = {}
    by_id: dict[int, tuple[str, str]] = {}
    for a in anns:
        assert a.label_id is not None
        if a.label in by_name and by_name[a.label][0] != a.label_id:
            first_id, first_entry = by_name[a.label]
            raise DataFormatError(
                src,
                f"label {a.label!r} has label_id {a.label_id} here but {first_id} at {first_entry}",
                f"{a.entry}.label_id",
            )
        if a.label_id in by_id and by_id[a.label_id][0] != a.label:
            first_name, first_entry = by_id[a.label_id]
            raise DataFormatError(
                src,
                f"label_id {a.label_id} is {a.label!r} here but {first_name!r} at {first_entry}",
                f"{a.entry}.label_id",
            )
        by_name.setdefault(a.label, (a.label_id, a.entry))
        by_id.setdefault(a.label_id, (a.label, a.entry))
    return {name: idx for name, (idx, _) in by_name.items()}


# ---------------------------------------------------------------------------------------------
# Write
# ---------------------------------------------------------------------------------------------
def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else float(x)


def annotations_to_json(annotations: AnnotationSet, *, label_ids: bool = True) -> dict[str, Any]:
    """The JSON object :func:`write_annotations` writes (``label_id`` fields only if ``label_ids``)."""
    database: dict[str, Any] = {}
    names = annotations.classes
    for vid, v in annotations.videos.items():
        out: dict[str, Any] = {"subset": v.subset}
        if v.duration is not None:
            out["duration"] = float(v.duration)
        if v.fps is not None:
            out["fps"] = float(v.fps)
        out.update(v.extra)
        anns: list[dict[str, Any]] = []
        for i in range(len(v.segments)):
            label = int(v.segments.labels[i])
            if label not in names:
                raise ValueError(f"video {vid!r}: label id {label} is not a class of the annotation set")
            s, e = (float(x) for x in v.segments.segments[i].tolist())
            ann: dict[str, Any] = {"label": names[label], "segment": [s, e]}
            if label_ids:
                ann["label_id"] = label
            if v.frames is not None and not torch.isnan(v.frames[i]).any():
                ann["segment(frames)"] = [_num(x) for x in v.frames[i].tolist()]
            anns.append(ann)
        out["annotations"] = anns + [dict(a) for a in v.ignored]
        database[vid] = out
    data: dict[str, Any] = {}
    if annotations.version is not None:
        data["version"] = annotations.version
    data.update(annotations.extra)
    data["database"] = database
    return data


def write_annotations(
    path: PathLike, annotations: AnnotationSet, *, label_ids: bool = True, indent: int | None = None
) -> None:
    """Write ``annotations`` as ActivityNet-style JSON, atomically (nothing is left behind on error)."""
    try:
        data = annotations_to_json(annotations, label_ids=label_ids)
    except ValueError as exc:
        raise DataFormatError(path, str(exc)) from exc
    dump_json(path, data, indent)
