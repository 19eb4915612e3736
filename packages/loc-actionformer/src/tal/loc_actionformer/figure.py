"""Timeline figure of one video's detections: one row per class, bars shaded by score."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tal.core.types import Segments


def save_timeline(
    path: str | Path,
    detections: Segments,
    duration: float,
    *,
    title: str = "",
    class_names: Sequence[str] | None = None,
    ground_truth: Segments | None = None,
    max_rows: int = 12,
    min_score: float = 0.05,
) -> Path:
    """Draw ``detections`` (seconds, with scores) on a ``[0, duration]`` timeline and save a PNG.

    Each class with a detection gets a row (the ``max_rows`` classes with the best scores); a bar's
    opacity is its score, detections below ``min_score`` are not drawn (best drawn last, on top).
    ``ground_truth``, if given, is drawn as black outlines in its class's row.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if detections.scores is None:
        raise ValueError("detections need scores to be drawn")
    labels = detections.labels.tolist()
    scores = detections.scores.tolist()
    best: dict[int, float] = {}
    for lab, sc in zip(labels, scores, strict=True):
        best[lab] = max(best.get(lab, 0.0), sc)
    gt_labels = ground_truth.labels.tolist() if ground_truth is not None else []
    for lab in gt_labels:
        best.setdefault(lab, 0.0)
    rows = sorted(best, key=lambda c: -best[c])[:max_rows]
    row_of = {c: i for i, c in enumerate(rows)}
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(11, 0.9 + 0.45 * max(len(rows), 1)))
    dets = sorted(zip(detections.segments.tolist(), labels, scores, strict=True), key=lambda d: d[2])
    for (s, e), lab, sc in dets:
        if lab in row_of and sc >= min_score:
            y = len(rows) - 1 - row_of[lab]
            ax.broken_barh([(s, max(e - s, 1e-3))], (y - 0.35, 0.7), facecolors=cmap(lab % 10), alpha=min(1.0, sc))
    if ground_truth is not None:
        for (s, e), lab in zip(ground_truth.segments.tolist(), gt_labels, strict=True):
            y = len(rows) - 1 - row_of[lab]
            ax.broken_barh([(s, max(e - s, 1e-3))], (y - 0.42, 0.84), facecolors="none", edgecolors="black")

    def name(c: int) -> str:
        return f"{c}: {class_names[c]}" if class_names is not None and c < len(class_names) else f"class {c}"

    ax.set_yticks(range(len(rows)), [name(c) for c in reversed(rows)])
    ax.set_xlim(0, max(duration, 1e-3))
    ax.set_xlabel("time (s)")
    ax.set_title(title or "detections (opacity = score)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
