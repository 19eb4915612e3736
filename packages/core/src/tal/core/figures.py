"""Figures every method uses: a detection timeline (localization) and frame-label colour bars
(segmentation), saved as image files with matplotlib's Agg backend.

:func:`check_figure_path` tells whether matplotlib can write a file name before any work is done
(commands call it before they write anything else).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tal.core.errors import ConfigError
from tal.core.types import Segments

#: a bar is drawn at least this fraction of the time axis wide, so that short detections stay visible
MIN_WIDTH_FRACTION = 0.004


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def supported_formats() -> list[str]:
    """File extensions (without the dot) matplotlib can write here."""
    plt = pyplot()
    fig = plt.figure()
    try:
        return sorted(fig.canvas.get_supported_filetypes())
    finally:
        plt.close(fig)


def check_figure_path(path: str | Path, option: str = "--save-fig") -> Path:
    """``path`` if matplotlib can write its format; else a :class:`ConfigError` naming the formats."""
    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    formats = supported_formats()
    if ext not in formats:
        what = f"extension {p.suffix!r}" if p.suffix else "no extension"
        raise ConfigError(f"{option} {p}: {what}; use one of .{', .'.join(formats)}")
    return p


def runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of equal labels of ``(T,)``: ``(starts, ends_exclusive, labels)``."""
    labels = np.asarray(labels)
    if labels.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, labels[:0]
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(labels)]])
    return starts, ends, labels[starts]


def class_colors() -> Any:
    """A function ``class id -> RGBA``: 60 distinct qualitative colours (tab20, tab20b, tab20c), cycled."""
    plt = pyplot()
    palette = [plt.get_cmap(name)(i) for name in ("tab20", "tab20b", "tab20c") for i in range(20)]
    return lambda c: palette[int(c) % len(palette)]


def class_label(c: int, class_names: Sequence[str] | None) -> str:
    """``"3: Diving"`` when the name is known, else ``"class 3"``."""
    return f"{c}: {class_names[c]}" if class_names is not None and 0 <= c < len(class_names) else f"class {c}"


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` to ``path`` (parent folders created) and close it."""
    plt = pyplot()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def draw_label_bars(
    ax: Any,
    rows: Mapping[str, np.ndarray],
    class_names: Sequence[str] | None = None,
    *,
    fps: float | None = None,
    max_legend: int = 20,
) -> None:
    """Draw colour bars of frame labels on ``ax``: one row per entry of ``rows`` (each ``(T,)`` int),
    a colour per class, a legend of the classes present; x in frames, or seconds with ``fps``."""
    from matplotlib.patches import Patch

    arrays = {name: np.asarray(lab).astype(np.int64) for name, lab in rows.items()}
    if not arrays:
        raise ValueError("draw_label_bars: no rows to draw")
    present = sorted({int(c) for lab in arrays.values() for c in np.unique(lab)})
    cmap = class_colors()
    scale = 1.0 / fps if fps else 1.0
    for y, lab in enumerate(arrays.values()):
        s, e, lb = runs(lab)
        ax.broken_barh(
            [(float(a) * scale, float(b - a) * scale) for a, b in zip(s, e, strict=True)],
            (len(arrays) - 1 - y - 0.4, 0.8),
            facecolors=[cmap(int(c)) for c in lb],
        )
    ax.set_yticks(range(len(arrays)), list(reversed(list(arrays))))
    length = max(len(lab) for lab in arrays.values())
    ax.set_xlim(0, max(length, 1) * scale)
    ax.set_xlabel("time (s)" if fps else "frame")
    shown = present[:max_legend]
    handles = [Patch(color=cmap(c), label=class_label(c, class_names)) for c in shown]
    if handles:
        extra = f" (+{len(present) - len(shown)} more)" if len(present) > len(shown) else ""
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=7,
            title=f"classes{extra}",
            title_fontsize=8,
        )


def save_label_bars(
    path: str | Path,
    rows: Mapping[str, np.ndarray],
    class_names: Sequence[str] | None = None,
    *,
    title: str = "",
    fps: float | None = None,
) -> Path:
    """Save :func:`draw_label_bars` of ``rows`` (e.g. ground truth, backbone, refined) as an image."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.55 * len(rows)))
    draw_label_bars(ax, rows, class_names, fps=fps)
    ax.set_title(title or "frame labels (colour = class)")
    fig.tight_layout()
    return save_figure(fig, path)


def save_timeline(
    path: str | Path,
    detections: Segments,
    duration: float,
    *,
    title: str = "",
    class_names: Sequence[str] | None = None,
    ground_truth: Segments | None = None,
    max_rows: int = 12,
    per_class: int = 25,
) -> Path:
    """Detections (seconds, with scores) of one video on a ``[0, duration]`` timeline.

    One row per class (the ``max_rows`` classes with the best detections, plus those of the ground
    truth); in each row the ``per_class`` best detections, coloured by score on a colour scale with
    a colour bar (best drawn last, on top) and at least a visible minimum width. ``ground_truth``,
    if given, is drawn as hatched black outlines in the upper part of its class's row.
    """
    plt = pyplot()
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    if detections.scores is None:
        raise ValueError("detections need scores to be drawn")
    labels = [int(x) for x in detections.labels.tolist()]
    scores = [float(x) for x in detections.scores.tolist()]
    segs = [(float(s), float(e)) for s, e in detections.segments.tolist()]
    gt_labels = [int(x) for x in ground_truth.labels.tolist()] if ground_truth is not None else []
    best: dict[int, float] = {}
    for lab, sc in zip(labels, scores, strict=True):
        best[lab] = max(best.get(lab, float("-inf")), sc)
    ranked = sorted(best, key=lambda c: -best[c])
    rows = list(dict.fromkeys([*sorted(set(gt_labels)), *ranked]))[: max(max_rows, len(set(gt_labels)))]
    row_of = {c: i for i, c in enumerate(rows)}
    span = max(duration, 1e-3)
    min_width = MIN_WIDTH_FRACTION * span
    kept: list[tuple[tuple[float, float], int, float]] = []
    for c in rows:
        mine = sorted((d for d in zip(segs, labels, scores, strict=True) if d[1] == c), key=lambda d: -d[2])[:per_class]
        kept.extend(mine)
    shown_scores = [d[2] for d in kept]
    low, high = min(shown_scores, default=0.0), max(max(shown_scores, default=1.0), 1e-6)
    norm = Normalize(vmin=min(low, high - 1e-6), vmax=high)
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(12, 1.3 + 0.5 * max(len(rows), 1)))
    for (s, e), lab, sc in sorted(kept, key=lambda d: d[2]):
        y = len(rows) - 1 - row_of[lab]
        left = min(s, span - min_width) if e - s < min_width else s
        ax.broken_barh([(left, max(e - s, min_width))], (y - 0.38, 0.56), facecolors=cmap(norm(sc)), edgecolors="none")
    if ground_truth is not None:
        for (s, e), lab in zip(ground_truth.segments.tolist(), gt_labels, strict=True):
            y = len(rows) - 1 - row_of[lab]
            ax.broken_barh(
                [(s, max(e - s, min_width))],
                (y + 0.2, 0.22),
                facecolors="none",
                edgecolors="black",
                hatch="////",
                linewidth=0.8,
            )
    ax.set_yticks(range(len(rows)), [class_label(c, class_names) for c in reversed(rows)])
    ax.set_xlim(0, span)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("time (s)")
    ax.set_title(title or f"{len(kept)} detections (colour = score)", loc="left")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, pad=0.01, fraction=0.03, label="score")
    handles = [Patch(facecolor=cmap(0.75), label="detection")]
    if ground_truth is not None:
        handles.append(Patch(facecolor="none", edgecolor="black", hatch="////", label="ground truth"))
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)
