"""Reader of raw NTU RGB+D ``.skeleton`` files (Kinect v2, 25 joints per body).

Layout: the number of frames; per frame the number of bodies; per body a line whose first field is
the body ID, the number of joints (25), then one line per joint ``x y z depthX depthY colorX colorY
orientationW X Y Z trackingState``. Frames without a body are dropped (as the widely used
preprocessing does); each body keeps the indices of the kept frames it appears in. Any malformed or
truncated line is a :class:`~tal.core.errors.DataFormatError` naming the file and line number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tal.core.errors import DataFormatError

__all__ = ["NTUBody", "NTUName", "NTUSkeleton", "parse_ntu_name", "read_ntu_skeleton"]

NUM_JOINTS = 25
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


@dataclass
class NTUBody:
    """One tracked body: ``joints (F, 25, 3)`` and ``colors (F, 25, 2)`` float32 over the frames listed
    in ``interval`` (0-based indices among the sequence's kept frames); ``motion`` is the sum of the
    per-axis variances of its joints, set when the sequence has two or more bodies."""

    body_id: str
    joints: np.ndarray
    colors: np.ndarray
    interval: list[int] = field(default_factory=list)
    motion: float | None = None


@dataclass
class NTUSkeleton:
    """A parsed ``.skeleton`` file: ``bodies`` by ID in order of appearance, ``num_frames`` kept frames."""

    name: str
    num_frames: int
    bodies: dict[str, NTUBody]
    dropped_frames: list[int]


@dataclass(frozen=True)
class NTUName:
    """The fields of an NTU sample name ``SsssCcccPpppRrrrAaaa`` (all 1-based as written)."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        """0-based class index."""
        return self.action - 1


def parse_ntu_name(name: str) -> NTUName:
    """``S001C002P003R002A013`` -> its setup, camera, performer, replication and action."""
    m = _NAME.search(Path(name).name)
    if m is None:
        raise ValueError(f"{name!r} is not an NTU sample name (SsssCcccPpppRrrrAaaa)")
    return NTUName(*(int(g) for g in m.groups()))


class _Lines:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataFormatError(path, f"cannot read: {exc}") from None
        self.pos = 0

    def next(self, what: str) -> tuple[list[str], int]:
        if self.pos >= len(self.lines):
            raise DataFormatError(self.path, f"line {self.pos + 1}: file ends early (truncated?); expected {what}")
        fields = self.lines[self.pos].split()
        self.pos += 1
        if not fields:
            raise DataFormatError(self.path, f"line {self.pos}: empty line where {what} was expected")
        return fields, self.pos

    def count(self, what: str, limit: int) -> int:
        fields, line = self.next(what)
        try:
            value = int(fields[0])
        except ValueError:
            raise DataFormatError(self.path, f"line {line}: {what} must be an integer, got {fields[0]!r}") from None
        if not 0 <= value <= limit:
            raise DataFormatError(self.path, f"line {line}: {what} {value} is out of range [0, {limit}]")
        return value


def read_ntu_skeleton(path: str | Path) -> NTUSkeleton:
    """Parse one ``.skeleton`` file (see the module docstring)."""
    p = Path(path)
    src = _Lines(p)
    num_frames = src.count("the number of frames", 100_000)
    bodies: dict[str, NTUBody] = {}
    joints_by_body: dict[str, list[np.ndarray]] = {}
    colors_by_body: dict[str, list[np.ndarray]] = {}
    dropped: list[int] = []
    kept = -1
    for f in range(num_frames):
        num_bodies = src.count(f"the number of bodies of frame {f + 1}", 64)
        if num_bodies == 0:
            dropped.append(f)
            continue
        kept += 1
        for _ in range(num_bodies):
            fields, _line = src.next("a body line (body ID first)")
            body_id = fields[0]
            n_joints = src.count("the number of joints", 1000)
            if n_joints != NUM_JOINTS:
                raise DataFormatError(p, f"line {src.pos}: expected {NUM_JOINTS} joints, got {n_joints}")
            joints = np.zeros((NUM_JOINTS, 3), np.float32)
            colors = np.zeros((NUM_JOINTS, 2), np.float32)
            for j in range(NUM_JOINTS):
                vals, line = src.next(f"joint {j + 1}")
                if len(vals) < 7:
                    raise DataFormatError(p, f"line {line}: joint {j + 1} has {len(vals)} fields, expected 12")
                try:
                    joints[j] = [float(v) for v in vals[:3]]
                    colors[j] = [float(v) for v in vals[5:7]]
                except ValueError:
                    raise DataFormatError(p, f"line {line}: joint {j + 1} has a non-numeric coordinate") from None
            if body_id not in bodies:
                bodies[body_id] = NTUBody(body_id, np.empty(0), np.empty(0), [kept])
                joints_by_body[body_id], colors_by_body[body_id] = [], []
            else:
                body = bodies[body_id]
                body.interval.append(body.interval[-1] + 1)
            joints_by_body[body_id].append(joints)
            colors_by_body[body_id].append(colors)
    if len(dropped) >= num_frames:
        raise DataFormatError(p, f"all {num_frames} frames are empty (no body)")
    for body_id, body in bodies.items():
        body.joints = np.stack(joints_by_body[body_id])
        body.colors = np.stack(colors_by_body[body_id])
    if len(bodies) > 1:
        for body in bodies.values():
            body.motion = float(np.sum(np.var(body.joints.reshape(-1, 3), axis=0)))
    return NTUSkeleton(p.stem, num_frames - len(dropped), bodies, dropped)
