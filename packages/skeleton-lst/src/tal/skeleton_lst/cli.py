"""``tal lst``: prepare NTU data, write a stream's scores, ensemble streams, embed class descriptions.

* ``tal lst ntu-prepare --skeletons DIR --out DIR [--benchmark ...]``: raw ``.skeleton`` files ->
  ``NTU60_CS.npz``-style arrays (:mod:`tal.skeleton_lst.data.ntu_pipeline`);
* ``tal lst scores CONFIG --ckpt K --out S.npz [--split val|test]``: one stream's scores on a split;
* ``tal lst ensemble --joint J.npz --bone B.npz [--joint-motion JM.npz --bone-motion BM.npz]``: the
  release's weighted ensemble and the accuracy of each stream and of the ensemble;
* ``tal lst embed-text [--class-set ...] [--clip-weights FILE]``: embed and cache class descriptions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tal.core.cli.base import Command
from tal.core.errors import ConfigError, TalError
from tal.core.registry import Registry

__all__ = ["LST_COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lst_command", metavar="ACTION", required=True)
    prep = sub.add_parser("ntu-prepare", help="raw NTU .skeleton files -> the widely used .npz arrays")
    prep.add_argument("--skeletons", required=True, help="folder of SsssCcccPpppRrrrAaaa.skeleton files")
    prep.add_argument("--out", required=True, help="output folder")
    prep.add_argument(
        "--benchmark", action="append", choices=("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset"),
        help="benchmarks to write (repeatable; default ntu60-xsub and ntu60-xview)",
    )  # fmt: skip
    prep.add_argument("--names", help="text file of sample names to use (e.g. skes_available_name.txt)")

    sc = sub.add_parser("scores", help="write one stream's scores on a data split (for `tal lst ensemble`)")
    sc.add_argument("config", metavar="CONFIG_OR_PRESET")
    sc.add_argument("--ckpt", required=True)
    sc.add_argument("--out", required=True, help="score file (.npz)")
    sc.add_argument("--split", choices=("val", "test"), default="val")
    sc.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    sc.add_argument("--device", default=None)

    en = sub.add_parser("ensemble", help="the release's weighted ensemble of stream scores")
    for stream in ("joint", "bone", "joint-motion", "bone-motion"):
        en.add_argument(f"--{stream}", metavar="SCORES.npz", help=f"{stream} stream scores")
    en.add_argument("--weights", type=float, nargs="+", help="weights in joint, bone, joint-motion, bone-motion order")
    en.add_argument("--json", action="store_true", help="print the results as JSON")

    em = sub.add_parser("embed-text", help="embed the LST class descriptions and cache them")
    em.add_argument("--class-set", choices=("ntu60", "ntu120", "ucla"), action="append")
    em.add_argument("--clip-weights", help="a local CLIP checkpoint (default encoder: wordllama)")
    em.add_argument("--cache-dir", help="cache folder (default $TAL_CACHE_DIR/skeleton_lst/text)")


def _run(args: argparse.Namespace, registry: Registry) -> int:
    try:
        action = args.lst_command
        if action == "ntu-prepare":
            return _ntu_prepare(args)
        if action == "scores":
            return _scores(args, registry)
        if action == "ensemble":
            return _ensemble(args)
        return _embed_text(args)
    except TalError as exc:
        print(f"tal lst {args.lst_command}: error: {exc}", file=sys.stderr)
        return 2


def _ntu_prepare(args: argparse.Namespace) -> int:
    import numpy as np

    from tal.core.engine.run_logs import ProgressBar
    from tal.skeleton_lst.data.ntu_pipeline import preprocess, write_npz
    from tal.skeleton_lst.data.ntu_skeleton import read_ntu_skeleton

    folder = Path(args.skeletons)
    if args.names:
        names = [n.strip() for n in Path(args.names).read_text().splitlines() if n.strip()]
        files = [folder / f"{n}.skeleton" for n in names]
    else:
        files = sorted(folder.glob("*.skeleton"))
    if not files:
        raise ConfigError(f"--skeletons: no .skeleton files in {folder}")
    rows = np.zeros((len(files), 300, 150), np.float32)
    with ProgressBar(len(files), "NTU skeletons", True) as bar:
        for i, f in enumerate(files):
            rows[i] = preprocess(read_ntu_skeleton(f))
            bar.update(1)
    names = [f.stem for f in files]
    out = Path(args.out)
    for bench in args.benchmark or ["ntu60-xsub", "ntu60-xview"]:
        file_name = {
            "ntu60-xsub": "NTU60_CS",
            "ntu60-xview": "NTU60_CV",
            "ntu120-xsub": "NTU120_CSub",
            "ntu120-xset": "NTU120_CSet",
        }[bench]
        keep = list(range(len(names)))
        if bench.startswith("ntu60"):
            from tal.skeleton_lst.data.ntu_skeleton import parse_ntu_name

            keep = [i for i, n in enumerate(names) if parse_ntu_name(n).action <= 60]
        path = write_npz([names[i] for i in keep], rows[keep], bench, out / f"{file_name}.npz")
        print(f"{bench}: {path}")
    return 0


def _scores(args: argparse.Namespace, registry: Registry) -> int:
    import numpy as np
    import torch

    from tal.core.config import load_experiment
    from tal.core.engine.checkpoint import find_weights, load_checkpoint
    from tal.core.engine.trainer import move_to
    from tal.core.errors import DataFormatError
    from tal.skeleton_lst.ensemble import write_scores

    cfg = load_experiment(args.config, registry, list(args.overrides or []))
    split_cfg = getattr(cfg.data, args.split)
    if split_cfg is None:
        raise ConfigError(f"data.{args.split}: not set")
    model = registry.build("models", cfg.model)
    weights, layout = find_weights(load_checkpoint(args.ckpt), registry, True, args.ckpt)
    state = weights.state_dict
    if hasattr(model, "adapt_checkpoint_state"):
        state = model.adapt_checkpoint_state(state)
    try:
        model.load_state_dict(state, strict=weights.strict)
    except RuntimeError as exc:
        raise DataFormatError(args.ckpt, f"weights ({layout} layout) do not fit the model: {exc}") from None
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device).eval()
    dataset = registry.build("datasets", split_cfg)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.train.eval_batch_size, collate_fn=dataset.collate)
    names: list[str] = []
    scores: list[Any] = []
    labels: list[int] = []
    with torch.no_grad():
        for batch in loader:
            scores.append(model(move_to(batch["inputs"], device)).float().cpu().numpy())
            names.extend(batch["video_ids"])
            labels.extend(batch["targets"])
    path = write_scores(args.out, names, np.concatenate(scores), labels)
    top1 = float((np.concatenate(scores).argmax(1) == np.array(labels)).mean() * 100)
    print(f"{len(names)} samples, top-1 {top1:.2f}%: {path}")
    return 0


def _ensemble(args: argparse.Namespace) -> int:
    from tal.core.metrics.recognition import evaluate_recognition
    from tal.skeleton_lst.ensemble import ensemble, read_scores

    given = {
        "joint": args.joint,
        "bone": args.bone,
        "joint_motion": args.joint_motion,
        "bone_motion": args.bone_motion,
    }
    streams = {k: read_scores(v) for k, v in given.items() if v}
    if len(streams) < 2:
        raise ConfigError("give at least two streams (--joint, --bone, --joint-motion, --bone-motion)")
    try:
        _, result = ensemble(streams, args.weights)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    rows = {k: evaluate_recognition(s.scores, s.labels).topk for k, s in streams.items()}
    rows["ensemble"] = result.topk
    if args.json:
        print(json.dumps({k: {f"top{n}": v for n, v in r.items()} for k, r in rows.items()}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="LST ensemble (top-k accuracy, %)")
    table.add_column("stream")
    table.add_column("top1", justify="right")
    table.add_column("top5", justify="right")
    for name, r in rows.items():
        table.add_row(name, f"{r[1]:.2f}", f"{r[5]:.2f}")
    Console(file=sys.stdout).print(table)
    return 0


def _embed_text(args: argparse.Namespace) -> int:
    from tal.skeleton_lst.modeling.text import ClipTextConfig, TextEmbeddingCache, WordLlamaConfig, load_text_bank

    encoder = ClipTextConfig(weights=args.clip_weights) if args.clip_weights else WordLlamaConfig()
    cache = TextEmbeddingCache(args.cache_dir)
    for class_set in args.class_set or ["ntu60", "ntu120", "ucla"]:
        bank = load_text_bank(class_set, encoder, cache)
        counts = f"{len(bank.synonyms)} synonyms, {bank.num_classes} x 4 part descriptions"
        print(f"{class_set}: {counts}, {bank.dim}-d ({bank.identity})")
    return 0


LST_COMMAND = Command(
    help="LST / CTR-GCN tools: NTU preparation, stream scores, ensembles, text embeddings",
    add_arguments=_add_arguments,
    run=_run,
)
