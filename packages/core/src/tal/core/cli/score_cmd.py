"""``tal score loc`` and ``tal score seg``: score prediction files against ground truth.

Output contract (relied on by tests outside the repository), values in percent:

- ``tal score loc --json`` → ``{"tiou_thresholds": [...], "mAP": [...], "average_mAP": x,
  "recall": {"1x": [...], "5x": [...]}}``
- ``tal score seg --json`` → ``{"F1@10": x, "F1@25": x, "F1@50": x, "Edit": x, "Acc": x}``
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tal.core.cli.base import Command
from tal.core.errors import DataFormatError
from tal.core.registry import Registry

logger = logging.getLogger(__name__)
#: how many unmatched ids a warning or error shows
EXAMPLES = 3


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
    seg.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="MS-TCN split bundle (e.g. splits/test.split1.bundle): the videos to score (default: every "
        "ground-truth file)",
    )
    seg.add_argument(
        "--allow-missing", action="store_true", help="score the videos that have predictions, warn about the rest"
    )
    seg.add_argument("--json", action="store_true", help="print one JSON object")


def score_localization(args: argparse.Namespace) -> dict[str, Any]:
    """Read both files and evaluate; the contract's JSON object."""
    from tal.core.formats import read_annotations, read_results
    from tal.core.metrics.localization import DEFAULT_TIOU_THRESHOLDS, evaluate_detection

    gt = read_annotations(args.gt)
    if args.subset:
        gt = gt.filter(subset=args.subset)
    pred = read_results(args.pred, classes=gt)
    _check_predictions(pred, gt)
    thresholds = DEFAULT_TIOU_THRESHOLDS if args.tiou is None else args.tiou
    result = evaluate_detection({vid: v.segments for vid, v in gt.videos.items()}, pred.videos, thresholds, args.top_k)
    return {
        # computed with the exact floats (0.39999999999999997 for linspace's 0.4), reported rounded
        "tiou_thresholds": [round(t, 6) for t in result.tiou_thresholds],
        "mAP": result.mAP,
        "average_mAP": result.average_mAP,
        "recall": result.recall,
    }


def _examples(ids: list[str]) -> str:
    shown = ", ".join(repr(x) for x in ids[:EXAMPLES])
    return shown + (f" and {len(ids) - EXAMPLES} more" if len(ids) > EXAMPLES else "")


def _prefix_hint(unmatched: list[str], known: set[str]) -> str:
    """A hint when adding or removing a prefix such as ActivityNet's ``v_`` would match the ids."""
    for pre in ("v_",):
        if unmatched and all(f"{pre}{v}" in known for v in unmatched[:20]):
            return f"; the ground truth has them with a {pre!r} prefix"
        if unmatched and all(v.startswith(pre) and v[len(pre) :] in known for v in unmatched[:20]):
            return f"; the ground truth has them without the {pre!r} prefix"
    return ""


def _check_predictions(pred: Any, gt: Any) -> None:
    """Warn (one line each) about odd predictions scored as given and videos that match no ground truth."""
    past = 0
    for vid, segs in pred.videos.items():
        video = gt.videos.get(vid)
        if video is not None and video.duration is not None and len(segs):
            past += int((segs.segments[:, 1] > video.duration).sum())
    if past:
        pred.oddities["past_duration"] = past
    line = pred.oddity_report()
    if line:
        logger.warning("%s", line)
    with_dets = [v for v, s in pred.videos.items() if len(s)]
    unmatched = [v for v in with_dets if v not in gt.videos]
    if unmatched:
        n_det = sum(len(pred.videos[v]) for v in unmatched)
        logger.warning(
            "%s: %d of %d videos with predictions (%d predictions) match no ground-truth video, e.g. %s%s; "
            "their predictions count as false positives",
            pred.source,
            len(unmatched),
            len(with_dets),
            n_det,
            _examples(unmatched),
            _prefix_hint(unmatched, set(gt.videos)),
        )
    unseen = [v for v, video in gt.videos.items() if len(video.segments) and v not in pred.videos]
    if unseen:
        logger.warning(
            "%s: %d of %d ground-truth videos have no predictions, e.g. %s (their instances count as missed)",
            pred.source,
            len(unseen),
            len(gt.videos),
            _examples(unseen),
        )


def score_segmentation(args: argparse.Namespace) -> dict[str, Any]:
    """Every prediction file with a ground-truth file of the same stem; the contract's JSON object."""
    from tal.core.formats import read_ground_truth, read_mapping, read_prediction
    from tal.core.metrics.segmentation import evaluate_segmentation

    mapping = read_mapping(args.mapping)
    for b in args.background:
        if b not in mapping:  # MS-TCN's eval.py then excludes nothing; say so instead of failing
            logger.warning("background class %r is not in %s; no class is excluded", b, args.mapping)
    for folder, what in ((args.gt_dir, "ground-truth"), (args.pred_dir, "prediction")):
        if not folder.is_dir():
            raise DataFormatError(folder, f"{what} folder not found")
    pairs = _segmentation_pairs(args)
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


def _visible_files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def _segmentation_pairs(args: argparse.Namespace) -> list[tuple[str, Path, Path]]:
    """``(video, prediction file, ground-truth file)`` for every video to score.

    The videos are the bundle's (``--bundle``), else every ground-truth file; as in MS-TCN's eval.py
    each needs a prediction file of the same stem (with or without ``.txt``): a missing one is an
    error unless ``--allow-missing``. Prediction files of other videos are reported and ignored.
    """
    from tal.core.formats import read_bundle

    preds = _visible_files(args.pred_dir)
    if args.bundle is not None:
        videos = [Path(name).stem for name in read_bundle(args.bundle)]
        gt_files = {v: args.gt_dir / f"{v}.txt" for v in videos}
        absent = [v for v, p in gt_files.items() if not p.is_file()]
        if absent:
            raise DataFormatError(args.bundle, f"{len(absent)} videos have no ground-truth file in {args.gt_dir}, "
                                  f"e.g. {_examples(absent)}")  # fmt: skip
    else:
        gt_files = {stem: p for stem, p in _visible_files(args.gt_dir).items()}
    missing = [v for v in gt_files if v not in preds]
    if missing:
        where = f"{args.bundle}" if args.bundle is not None else f"{args.gt_dir}"
        message = (
            f"{len(missing)} of {len(gt_files)} videos of {where} have no prediction file in {args.pred_dir}, "
            f"e.g. {_examples(missing)}"
        )
        if not args.allow_missing:
            hint = "" if args.bundle is not None else "; pass --bundle SPLIT.bundle to score one split's videos"
            raise DataFormatError(args.pred_dir, f"{message}{hint}, or --allow-missing to score the others")
        logger.warning("%s; scoring the other %d", message, len(gt_files) - len(missing))
    extra = [v for v in preds if v not in gt_files]
    if extra:
        logger.warning(
            "%s: %d prediction files are for no video scored here, e.g. %s (ignored)",
            args.pred_dir,
            len(extra),
            _examples(extra),
        )
    pairs = [(v, preds[v], gt) for v, gt in gt_files.items() if v in preds]
    if not pairs:
        raise DataFormatError(
            args.pred_dir, f"no prediction file has a ground-truth file of the same stem in {args.gt_dir}"
        )
    return pairs


def _fmt(x: float) -> str:
    return "nan" if isinstance(x, float) and math.isnan(x) else f"{x:.2f}"


def _run(args: argparse.Namespace, registry: Registry) -> int:
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
