"""``tal train`` and ``tal eval``: run the :class:`~tal.core.engine.Trainer` on any registered model and dataset.

``tal train CONFIG_OR_PRESET [--split K] [--set path=value ...] [--output-dir DIR] [--resume PATH|auto]
[--overwrite] [--device D]``
``tal eval CONFIG_OR_PRESET --ckpt PATH [--split K|all] [--subset val|test] [--json] [--set ...] [--device D]``

Both work under ``torchrun --nproc_per_node N -m tal.core.cli.main train ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tal.core.cli.base import Command
from tal.core.config import EmaConfig, TrainConfig, load_experiment, write_run_config
from tal.core.engine.checkpoint import BEST, LAST, load_model_weights, to_plain
from tal.core.engine.distributed import all_gather_objects, init_distributed, shutdown_distributed
from tal.core.engine.run_logs import flatten_metrics
from tal.core.engine.seed import seed_everything
from tal.core.engine.trainer import METRICS_CSV, TENSORBOARD_DIR, Trainer
from tal.core.errors import ConfigError, TalError
from tal.core.registry import Registry

logger = logging.getLogger(__name__)

#: files of a run folder that a new run would overwrite
RUN_FILES = (LAST, BEST, METRICS_CSV)


# -- arguments ----------------------------------------------------------------------------------
def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG_OR_PRESET", help="experiment YAML file or registered preset name")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a config field, e.g. --set train.epochs=5 (repeatable; values are YAML)",
    )
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (overrides train.device)")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tal train``."""
    _common_arguments(parser)
    parser.add_argument("--split", type=int, default=None, metavar="K", help="split K of a preset that has splits")
    parser.add_argument("--output-dir", default=None, help="run directory (overrides train.output_dir)")
    parser.add_argument(
        "--resume", default=None, metavar="PATH|auto", help="resume from a checkpoint; 'auto' uses OUTPUT_DIR/last.pt"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="start over in an output folder that holds a run (its files go)"
    )


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tal eval``."""
    _common_arguments(parser)
    parser.add_argument(
        "--ckpt",
        required=True,
        help="checkpoint to evaluate (EMA weights are used when present); with --split all or several splits "
        "the path may contain {split}",
    )
    parser.add_argument(
        "--split",
        default=None,
        metavar="K|all",
        help="split(s) of a preset that has splits: K, K,L,... or all (one row per split and their mean)",
    )
    parser.add_argument(
        "--subset", choices=("val", "test"), default="val", help="which data section to score (default val)"
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--save-scores",
        default=None,
        metavar="OUT.npz",
        help="also write every video's predicted scores: names, scores, labels (recognition models; may "
        "contain {split})",
    )


# -- helpers ------------------------------------------------------------------------------------
def _train_settings(cfg: Any, args: argparse.Namespace) -> TrainConfig:
    update: dict[str, Any] = {}
    if getattr(args, "device", None):
        update["device"] = args.device
    if getattr(args, "output_dir", None):
        update["output_dir"] = str(args.output_dir)
    return cfg.train.model_copy(update=update)


def _jsonable(value: Any) -> Any:
    value = to_plain(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


def print_metrics(metrics: dict[str, Any], title: str, as_json: bool = False) -> None:
    """Print ``metrics`` to stdout as a table (scalar leaves) or as JSON (everything)."""
    if as_json:
        print(json.dumps(_jsonable(metrics), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, min_width=len(title) + 4)
    table.add_column("metric")
    table.add_column("value", justify="right")
    flat = flatten_metrics(metrics)
    for key, value in flat.items():
        table.add_row(key, f"{value:.4f}")
    if not flat:
        table.add_row("(none)", "")
    Console(file=sys.stdout).print(table)


def _error(command: str, exc: Exception) -> int:
    from tal.core.cli.main import capped

    print(f"tal {command}: error: {capped(str(exc))}", file=sys.stderr)
    return 2


# -- tal train ----------------------------------------------------------------------------------
def run_train(args: argparse.Namespace, registry: Registry) -> int:
    """``tal train``; returns the exit code (2 with a message on stderr for bad configs or data)."""
    try:
        return _train(args, registry)
    except TalError as exc:
        return _error("train", exc)


def _train(args: argparse.Namespace, registry: Registry) -> int:
    cfg = load_experiment(args.config, registry, list(args.overrides or []), split=args.split)
    train_cfg = _train_settings(cfg, args)
    if cfg.data.train is None:
        raise ConfigError("data.train: `tal train` needs a training dataset")
    if cfg.data.val is not None and cfg.metric is None:
        raise ConfigError("metric: data.val is set but no metric is configured to score it")
    ctx = init_distributed(train_cfg.device)
    try:
        out, resume = _run_folder(Path(train_cfg.output_dir), args.resume, args.overwrite, ctx.is_main)
        train_cfg = train_cfg.model_copy(update={"output_dir": str(out)})
        cfg = cfg.model_copy(update={"train": train_cfg})
        seed_everything(train_cfg.seed)
        trainer = Trainer.from_experiment(cfg, registry, out, dist=ctx)
        if resume is not None:
            trainer.resume(resume)
            if ctx.is_main:
                logger.info(
                    "resumed %s: %d of %d epochs done (step %d)%s",
                    resume,
                    trainer.epoch,
                    train_cfg.epochs,
                    trainer.global_step,
                    f", best {trainer.best['metric']} = {trainer.best['value']:.4f}"
                    if trainer.best.get("value") is not None
                    else "",
                )
        if ctx.is_main:
            write_run_config(out, cfg)
        metrics = trainer.fit()
        if ctx.is_main:
            print_metrics(metrics, f"final metrics (epoch {trainer.epoch})")
            best = trainer.best
            if best["value"] is not None:
                logger.info("best %s = %.4f at epoch %s", best["metric"], best["value"], best["epoch"])
            logger.info("checkpoints and logs in %s", out)
    finally:
        shutdown_distributed(ctx)
    return 0


def _holds_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in RUN_FILES)


def _run_folder(out: Path, resume: str | None, overwrite: bool, is_main: bool) -> tuple[Path, Path | None]:
    """The folder to train in and the checkpoint to resume from.

    A folder that already holds a run is never overwritten silently: ``--resume`` continues it,
    ``--overwrite`` removes its run files, otherwise the run goes to the first free ``OUT-2``, ``OUT-3``...
    """
    if resume is not None and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if resume == "auto":
        if (out / LAST).is_file():
            return out, out / LAST
        if is_main:
            logger.info("--resume auto: no %s in %s; starting a new run", LAST, out)
        return out, None
    if resume is not None:
        path = Path(resume)
        if not path.is_file():
            raise ConfigError(f"--resume {resume}: no such checkpoint file")
        return out, path
    if not _holds_run(out):
        return out, None
    if overwrite:
        if is_main:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / TENSORBOARD_DIR, ignore_errors=True)
            logger.info("--overwrite: removed the previous run's files in %s", out)
        return out, None
    k = 2
    while _holds_run(out.with_name(f"{out.name}-{k}")):
        k += 1
    fresh = out.with_name(f"{out.name}-{k}")
    if is_main:
        logger.warning(
            "%s already holds a run; writing this one to %s (--resume auto continues the old one, --overwrite "
            "replaces it)",
            out,
            fresh,
        )
    return fresh, None


# -- tal eval -----------------------------------------------------------------------------------
def run_eval(args: argparse.Namespace, registry: Registry) -> int:
    """``tal eval``; returns the exit code (2 with a message on stderr for bad configs, data or checkpoints)."""
    try:
        return _eval(args, registry)
    except TalError as exc:
        return _error("eval", exc)


def _eval_splits(args: argparse.Namespace, registry: Registry) -> list[int | None]:
    """The preset splits ``--split`` names (``[None]`` when it is not given)."""
    raw = args.split
    if raw is None:
        return [None]
    source = str(args.config)
    preset = registry.get("presets", source).factory if source in registry.names("presets") else None
    splits = getattr(preset, "splits", None)
    if splits is None:
        raise ConfigError(f"{source}: --split applies to presets with splits (this config has none)")
    if raw == "all":
        return list[int | None](splits)
    try:
        chosen = [int(p) for p in str(raw).split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"--split {raw!r}: expected K, K,L,... or all") from None
    unknown = [k for k in chosen if k not in splits]
    if unknown or not chosen:
        raise ConfigError(f"--split {raw!r}: {source} has splits {list(splits)}")
    return list[int | None](chosen)


def _eval(args: argparse.Namespace, registry: Registry) -> int:
    if args.split in ("val", "test"):  # the option's old meaning
        args.subset, args.split = args.split, None
    splits = _eval_splits(args, registry)
    if len(splits) > 1 and "{split}" not in str(args.ckpt):
        raise ConfigError(f"--ckpt {args.ckpt}: with several splits the path must contain {{split}}")
    results: list[tuple[int | None, dict[str, Any]]] = []
    for split in splits:
        ckpt = str(args.ckpt).replace("{split}", str(split)) if split is not None else str(args.ckpt)
        results.append((split, _eval_one(args, registry, split, Path(ckpt))))
    if results and results[0][1] is not None:
        if len(results) == 1:
            print_metrics(results[0][1], f"{args.subset} metrics", as_json=args.json)
        else:
            print_split_table(results, args.subset, as_json=args.json)
    return 0


def _eval_one(args: argparse.Namespace, registry: Registry, split: int | None, ckpt: Path) -> Any:
    """Metrics of one checkpoint on one split (``None`` on ranks other than the main one)."""
    cfg = load_experiment(args.config, registry, list(args.overrides or []), split=split)
    train_cfg = _train_settings(cfg, args).model_copy(update={"ema": EmaConfig(enabled=False)})
    split_cfg = getattr(cfg.data, args.subset)
    if split_cfg is None:
        raise ConfigError(f"data.{args.subset}: not set; `tal eval --subset {args.subset}` needs that dataset")
    if cfg.metric is None:
        raise ConfigError("metric: `tal eval` needs a metric")
    ctx = init_distributed(train_cfg.device)
    try:
        seed_everything(train_cfg.seed)
        model = registry.build("models", cfg.model)
        source = load_model_weights(model, ckpt, registry, prefer_ema=True, config=cfg.model)
        dataset = registry.build("datasets", split_cfg)
        metric = registry.build("metrics", cfg.metric)
        trainer = Trainer(model, None, None, metric, train_cfg, dist=ctx)
        collected: list[tuple[str, Any, Any]] = []

        def keep(predictions: Any, targets: Any, video_ids: Any) -> None:
            collected.extend(zip(video_ids, predictions, targets, strict=True))

        metrics = trainer.evaluate(dataset, on_batch=keep if args.save_scores else None)
        if args.save_scores:
            rows = [row for part in all_gather_objects(collected, ctx) for row in part]
            if ctx.is_main:
                out = str(args.save_scores).replace("{split}", str(split))
                logger.info("wrote %s", save_scores(Path(out), rows))
        if ctx.is_main:
            where = f" split {split}" if split is not None else ""
            logger.info("evaluated %s (%s weights) on data.%s%s", ckpt, source, args.subset, where)
            return metrics
        return None
    finally:
        shutdown_distributed(ctx)


def save_scores(path: Path, rows: list[tuple[str, Any, Any]]) -> Path:
    """Write ``(video id, predicted scores, label)`` rows as ``.npz`` with ``names`` (N,), ``scores`` (N, K)
    and ``labels`` (N,): the layout score-ensembling tools read (e.g. ``tal lst ensemble``)."""
    from tal.core.formats import atomic_open

    if not rows:
        raise ConfigError(f"--save-scores {path}: the data split has no videos")
    scores = []
    for vid, pred, target in rows:
        scalar_target = not isinstance(target, torch.Tensor) or target.numel() == 1
        if not isinstance(pred, torch.Tensor) or pred.dim() != 1 or not scalar_target:
            kind = (
                type(pred).__name__ if not isinstance(pred, torch.Tensor) else f"a tensor of shape {tuple(pred.shape)}"
            )
            raise ConfigError(
                f"--save-scores {path}: the model's prediction for {vid!r} is {kind}; only models that predict one "
                "score vector per video (recognition) can save scores"
            )
        scores.append(pred.float().numpy())
    labels = [int(t) if not isinstance(t, torch.Tensor) else int(t.item()) for _, _, t in rows]
    with atomic_open(path, "wb") as f:
        np.savez(f, names=np.array([r[0] for r in rows]), scores=np.stack(scores), labels=np.array(labels))
    return path


def print_split_table(results: list[tuple[int | None, dict[str, Any]]], subset: str, as_json: bool = False) -> None:
    """One row per split and a row with the mean of every scalar metric over the splits."""
    flats = [(split, flatten_metrics(m)) for split, m in results]
    keys = [k for k in flats[0][1] if all(k in f for _, f in flats)]
    mean = {k: sum(f[k] for _, f in flats) / len(flats) for k in keys}
    if as_json:
        payload = {"splits": {str(s): _jsonable(m) for s, m in results}, "mean": mean}
        print(json.dumps(payload, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{subset} metrics per split")
    table.add_column("split")
    for k in keys:
        table.add_column(k, justify="right")
    for split, flat in flats:
        table.add_row(str(split), *(f"{flat[k]:.4f}" for k in keys))
    table.add_row("mean", *(f"{mean[k]:.4f}" for k in keys), style="bold")
    Console(file=sys.stdout).print(table)


TRAIN = Command(help="train a model from an experiment config", add_arguments=add_train_arguments, run=run_train)
EVAL = Command(help="evaluate a checkpoint on a data split", add_arguments=add_eval_arguments, run=run_eval)


def register(registry: Registry) -> None:
    """Add ``train`` and ``eval`` to the ``tal`` command."""
    registry.add_command("train", TRAIN)
    registry.add_command("eval", EVAL)
