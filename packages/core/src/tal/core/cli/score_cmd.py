"""``tal score loc`` and ``tal score seg``: score prediction files against ground truth.

Output contract (relied on by tests outside the repository), values in percent:

- ``tal score loc --json`` → ``{"tiou_thresholds": [...], "mAP": [...], "average_mAP": x,
  "recall": {"1x": [...], "5x": [...]}}``
- ``tal score seg --json`` → ``{"F1@10": x, "F1@25": x, "F1@50": x, "Edit": x, "Acc": x}``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tal.core.cli.base import Command
from tal.core.errors import DataFormatError
from tal.core.registry import Registry


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    loc = sub.add_parser("loc", help="localization: mAP per tIoU, average mAP, Recall@k×tIoU")
    loc.add_argument("--gt", required=True, type=Path, help="ActivityNet-style annotation JSON")
    loc.add_argument("--pred", required=True, type=Path, help='results JSON ({"results": {video: [...]}})')
    loc.add_argument(
        "--tiou",
        type=float,
        nargs="+",
        default=None,
        metavar="T",
        help="tIoU thresholds (default: ActionFormer's np.linspace(0.3, 0.7, 5))",
    )
    loc.add_argument("--top-k", type=int, nargs="+", default=[1, 5], metavar="K", help="Recall@kx multipliers")
    loc.add_argument("--subset", default=None, help="only ground-truth videos of this subset (default: all)")
    loc.add_argument("--json", action="store_true", help="print one JSON object")
    seg = sub.add_parser("seg", help="segmentation: F1@{10,25,50}, Edit, Acc")
    seg.add_argument("--gt-dir", required=True, type=Path, help="folder of ground-truth .txt files")
    seg.add_argument("--pred-dir", required=True, type=Path, help="folder of prediction .txt files")
    seg.add_argument("--mapping", required=True, type=Path, help="mapping.txt (`idx name` per line)")
    seg.add_argument("--background", nargs="+", default=["background"], help="background class name(s)")
    seg.add_argument("--convention", choices=["mstcn", "diffact"], default="mstcn")
    seg.add_argument("--json", action="store_true", help="print one JSON object")


def score_localization(args: argparse.Namespace) -> dict[str, Any]:
    """Read both files and evaluate; the contract's JSON object."""
    from tal.core.formats import read_annotations, read_results
    from tal.core.metrics.localization import DEFAULT_TIOU_THRESHOLDS, evaluate_detection

    gt = read_annotations(args.gt)
    if args.subset:
        gt = gt.filter(subset=args.subset)
    pred = read_results(args.pred, classes=gt)
    thresholds = DEFAULT_TIOU_THRESHOLDS if args.tiou is None else args.tiou
    result = evaluate_detection({vid: v.segments for vid, v in gt.videos.items()}, pred.videos, thresholds, args.top_k)
    return {
        # computed with the exact floats (0.39999999999999997 for linspace's 0.4), reported rounded
        "tiou_thresholds": [round(t, 6) for t in result.tiou_thresholds],
        "mAP": result.mAP,
        "average_mAP": result.average_mAP,
        "recall": result.recall,
    }


def score_segmentation(args: argparse.Namespace) -> dict[str, Any]:
    """Every prediction file with a ground-truth file of the same stem; the contract's JSON object."""
    from tal.core.formats import read_ground_truth, read_mapping, read_prediction
    from tal.core.metrics.segmentation import evaluate_segmentation

    mapping = read_mapping(args.mapping)
    for b in args.background:
        if b not in mapping:  # MS-TCN's eval.py then excludes nothing; say so instead of failing
            print(f"tal score seg: note: background class {b!r} is not in {args.mapping}; no class is excluded",
                  file=sys.stderr)  # fmt: skip
    for folder, what in ((args.gt_dir, "ground-truth"), (args.pred_dir, "prediction")):
        if not folder.is_dir():
            raise DataFormatError(folder, f"{what} folder not found")
    preds = {p.stem: p for p in sorted(args.pred_dir.iterdir()) if p.is_file() and not p.name.startswith(".")}
    pairs = [(stem, p, args.gt_dir / f"{stem}.txt") for stem, p in preds.items()]
    pairs = [x for x in pairs if x[2].is_file()]
    if not pairs:
        raise DataFormatError(
            args.pred_dir, f"no prediction file has a ground-truth file of the same stem in {args.gt_dir}"
        )
    gts, outs = [], []
    for _stem, pred_path, gt_path in pairs:
        g, p = read_ground_truth(gt_path, mapping), read_prediction(pred_path, mapping)
        if len(p) != len(g):
            raise DataFormatError(pred_path, f"{len(p)} frames but the ground truth {gt_path.name} has {len(g)}")
        gts.append(g)
        outs.append(p)
    scores = evaluate_segmentation(
        outs, gts, background_ids=[mapping[b] for b in args.background if b in mapping], convention=args.convention
    ).as_dict()
    return {k: scores[k] for k in ("F1@10", "F1@25", "F1@50", "Edit", "Acc")} | {"num_videos": len(pairs)}


def _fmt(x: float) -> str:
    return "nan" if isinstance(x, float) and math.isnan(x) else f"{x:.2f}"


def _run(args: argparse.Namespace) -> int:
    if args.task == "loc":
        out = score_localization(args)
        if args.json:
            print(json.dumps(out))
            return 0
        table = Table(title=f"localization: {args.pred.name} vs {args.gt.name}")
        table.add_column("tIoU")
        table.add_column("mAP (%)", justify="right")
        for k in out["recall"]:
            table.add_column(f"Recall@{k} (%)", justify="right")
        for i, t in enumerate(out["tiou_thresholds"]):
            table.add_row(f"{t:g}", _fmt(out["mAP"][i]), *(_fmt(v[i]) for v in out["recall"].values()))
        table.add_row("average", _fmt(out["average_mAP"]), *("" for _ in out["recall"]), style="bold")
        Console().print(table)
        return 0
    out = score_segmentation(args)
    n = out.pop("num_videos")
    if args.json:
        print(json.dumps(out))
        return 0
    table = Table(title=f"segmentation ({args.convention} convention, {n} videos)")
    for k in out:
        table.add_column(f"{k} (%)", justify="right")
    table.add_row(*(_fmt(v) for v in out.values()))
    Console().print(table)
    return 0


SCORE = Command(help="score localization or segmentation predictions", add_arguments=_add_arguments, run=_run)


def register(registry: Registry) -> None:
    registry.add_command("score", SCORE)
