"""tal-core's demo: score sample segmentation annotations with every core metric.

Data: the real Breakfast ground truth in ``shared/data/segmentation/breakfast`` when it is found
(``--data DIR`` or a ``shared/`` folder beside the current directory or one of its parents);
otherwise a synthetic kitchen set generated here from a fixed seed and written in the same MS-TCN
layout (the Breakfast files are research fixtures that must not be redistributed inside a wheel).

Three simulated predictors of different quality are derived from the ground truth (seeded), written
as MS-TCN prediction files, read back and scored with F1@{10,25,50}/Edit/Acc (MS-TCN and DiffAct
conventions) and, after turning frame labels into scored segments, with localization mAP.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tal.core import figures
from tal.core.figures import runs
from tal.core.formats import (
    atomic_write_text,
    read_ground_truth,
    read_mapping,
    read_prediction,
    write_ground_truth,
    write_mapping,
    write_prediction,
)
from tal.core.types import Segments

SAMPLE_SUBPATH = Path("shared") / "data" / "segmentation" / "breakfast"
SYNTHETIC_CLASSES = [
    "background",
    "take_cup",
    "pour_coffee",
    "pour_milk",
    "spoon_sugar",
    "stir_coffee",
    "take_bowl",
    "pour_cereals",
]
PREDICTORS = ("boundary-jitter", "over-segmented", "class-confused")


def find_sample_data(start: Path | None = None) -> Path | None:
    """The shared Breakfast sample folder above ``start`` (default: the current directory), if any."""
    here = (start or Path.cwd()).resolve()
    for base in (here, *here.parents):
        cand = base / SAMPLE_SUBPATH
        if (cand / "mapping.txt").is_file() and (cand / "groundTruth").is_dir():
            return cand
    return None


def make_synthetic_data(root: Path, seed: int = 0, num_videos: int = 6) -> Path:
    """Write a synthetic MS-TCN-style set (``mapping.txt`` + ``groundTruth/*.txt``) under ``root``."""
    rng = np.random.default_rng(seed)
    write_mapping(root / "mapping.txt", SYNTHETIC_CLASSES)
    for v in range(num_videos):
        actions = rng.permutation(np.arange(1, len(SYNTHETIC_CLASSES)))[: rng.integers(3, 7)]
        labels: list[int] = [0] * int(rng.integers(20, 80))
        for a in actions:
            labels += [int(a)] * int(rng.integers(60, 400))
            if rng.random() < 0.5:
                labels += [0] * int(rng.integers(10, 60))
        labels += [0] * int(rng.integers(20, 80))
        write_ground_truth(root / "groundTruth" / f"kitchen_{v:02d}.txt", np.array(labels), SYNTHETIC_CLASSES)
    return root


def simulate(gt: np.ndarray, kind: str, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """A plausible prediction of ``gt (T,)``: jittered boundaries, spurious fragments or confusions."""
    starts, ends, labs = runs(gt)
    lengths = ends - starts
    cuts = starts[1:] + np.rint(rng.normal(0, 0.2 * np.minimum(lengths[1:], lengths[:-1]))).astype(int)
    cuts = np.clip(np.maximum.accumulate(cuts), 1, len(gt) - 1)
    bounds = np.concatenate([[0], cuts, [len(gt)]])
    if kind == "class-confused":
        swap = rng.random(len(labs)) < 0.25
        labs = np.where(swap, rng.integers(0, num_classes, len(labs)), labs)
    pred = np.repeat(labs, np.diff(bounds))
    if kind == "over-segmented":
        for _ in range(max(1, len(gt) // 250)):
            s = int(rng.integers(0, len(gt) - 25))
            pred[s : s + int(rng.integers(5, 25))] = rng.integers(0, num_classes)
    return pred


def to_segments(labels: np.ndarray, fps: float, background: int, with_scores: bool) -> Segments:
    """Non-background runs as segments in seconds; scores grow with run length (short runs are doubtful)."""
    starts, ends, labs = runs(labels)
    keep = labs != background
    s, e, lab = starts[keep], ends[keep], labs[keep]
    scores = 1.0 - np.exp(-(e - s) / 30.0) if with_scores else None
    return Segments(
        torch.as_tensor(np.stack([s, e], 1) / fps),
        torch.as_tensor(lab),
        None if scores is None else torch.as_tensor(scores),
    )


def _figure(
    path: Path, video: str, gt: np.ndarray, preds: dict[str, np.ndarray], table: dict[str, dict], names: list[str]
) -> None:
    plt = figures.pyplot()
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(12, 6.5), gridspec_kw={"height_ratios": [1.1, 1]})
    figures.draw_label_bars(ax0, {"ground truth": gt, **preds}, names)
    ax0.set_title(f"{video}: ground truth and simulated predictions (colour = class)")
    keys = ["F1@10", "F1@25", "F1@50", "Edit", "Acc", "average_mAP"]
    width = 0.8 / len(table)
    for i, (name, scores) in enumerate(table.items()):
        ax1.bar(np.arange(len(keys)) + i * width, [scores[k] for k in keys], width, label=name)
    ax1.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys)
    ax1.set_ylabel("%")
    ax1.set_ylim(0, 100)
    ax1.legend(loc="lower right", fontsize=8)
    ax1.set_title("scores (MS-TCN convention; mAP averaged over tIoU 0.3:0.7)")
    fig.tight_layout()
    figures.save_figure(fig, path)


def run_demo(out_dir: Path, quick: bool = False, data: Path | None = None, fps: float = 15.0) -> dict[str, Any]:
    """Score simulated predictors on sample annotations; write JSON, predictions and a figure to ``out_dir``."""
    from rich.console import Console
    from rich.table import Table

    from tal.core.metrics.localization import evaluate_detection
    from tal.core.metrics.segmentation import evaluate_segmentation

    out_dir = Path(out_dir)
    root = data if data is not None else find_sample_data()
    source = f"real annotations in {root}" if root is not None else "synthetic annotations (embedded generator)"
    if root is None:
        root = make_synthetic_data(out_dir / "data")
    mapping = read_mapping(root / "mapping.txt")
    background = mapping.get("background", mapping.get("SIL", 0))
    files = sorted((root / "groundTruth").glob("*.txt"))
    if quick:
        files = files[:6]
    gts = {f.stem: read_ground_truth(f, mapping) for f in files}
    names = [n for n, _ in sorted(mapping.items(), key=lambda kv: kv[1])]
    console = Console()
    console.print(f"[bold]core demo[/bold]: {len(gts)} videos, {len(mapping)} classes — {source}")
    t0 = time.perf_counter()
    table: dict[str, dict[str, float]] = {}
    examples: dict[str, np.ndarray] = {}
    first = next(iter(gts))
    for k, kind in enumerate(PREDICTORS):
        rng = np.random.default_rng(100 + k)
        pred_dir = out_dir / "predictions" / kind
        preds = {}
        for vid, gt in gts.items():
            write_prediction(pred_dir / f"{vid}.txt", simulate(gt, kind, len(mapping), rng), names)
            preds[vid] = read_prediction(pred_dir / f"{vid}.txt", mapping)
        examples[kind] = preds[first]
        seg = evaluate_segmentation(list(preds.values()), list(gts.values()), [background]).as_dict()
        seg_diffact = evaluate_segmentation(
            list(preds.values()), list(gts.values()), [background], convention="diffact"
        ).as_dict()
        loc = evaluate_detection(
            {v: to_segments(g, fps, background, False) for v, g in gts.items()},
            {v: to_segments(p, fps, background, True) for v, p in preds.items()},
        )
        table[kind] = {key: float(seg[key]) for key in ("F1@10", "F1@25", "F1@50", "Edit", "Acc")}
        table[kind]["F1@50 (diffact)"] = float(seg_diffact["F1@50"])
        table[kind]["mAP@0.5"] = loc.mAP[2]
        table[kind]["average_mAP"] = loc.average_mAP
    elapsed = time.perf_counter() - t0
    view = Table(title=f"core metrics on simulated predictors, % ({elapsed:.2f} s)")
    view.add_column("metric")
    for kind in table:
        view.add_column(kind, justify="right")
    for metric in next(iter(table.values())):
        view.add_row(metric, *(f"{scores[metric]:.2f}" for scores in table.values()))
    console.print(view)
    report = {"source": source, "videos": list(gts), "fps": fps, "scores": table}
    atomic_write_text(out_dir / "core_demo.json", json.dumps(report, indent=2))
    _figure(out_dir / "core_demo.png", first, gts[first], examples, table, list(mapping))
    console.print(f"wrote {out_dir / 'core_demo.json'} and {out_dir / 'core_demo.png'}")
    best = table["boundary-jitter"]
    return {"videos": len(gts), "F1@50": best["F1@50"], "Edit": best["Edit"], "average_mAP": best["average_mAP"]}
