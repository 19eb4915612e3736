"""``tal train`` and ``tal eval``: run the :class:`~tal.core.engine.Trainer` on any registered model and dataset.

``tal train CONFIG_OR_PRESET [--set path=value ...] [--output-dir DIR] [--resume PATH|auto] [--device D]``
``tal eval CONFIG_OR_PRESET --ckpt PATH [--split val|test] [--json] [--set ...] [--device D]``

Both work under ``torchrun --nproc_per_node N -m tal.core.cli.main train ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from tal.core.cli.base import Command
from tal.core.config import EmaConfig, TrainConfig, load_experiment
from tal.core.engine.checkpoint import LAST, load_model_weights, to_plain
from tal.core.engine.distributed import init_distributed, shutdown_distributed
from tal.core.engine.logging import flatten_metrics
from tal.core.engine.seed import seed_everything
from tal.core.engine.trainer import Trainer
from tal.core.errors import ConfigError, TalError
from tal.core.registry import Registry, get_registry

RESOLVED_CONFIG = "config.yaml"


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
    parser.add_argument("--output-dir", default=None, help="run directory (overrides train.output_dir)")
    parser.add_argument(
        "--resume", default=None, metavar="PATH|auto", help="resume from a checkpoint; 'auto' uses OUTPUT_DIR/last.pt"
    )


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tal eval``."""
    _common_arguments(parser)
    parser.add_argument("--ckpt", required=True, help="checkpoint to evaluate (EMA weights are used when present)")
    parser.add_argument("--split", choices=("val", "test"), default="val", help="which data split to score")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


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
    print(f"tal {command}: error: {exc}", file=sys.stderr)
    return 2


# -- tal train ----------------------------------------------------------------------------------
def run_train(args: argparse.Namespace, registry: Registry | None = None) -> int:
    """``tal train``; returns the exit code (2 with a message on stderr for bad configs or data)."""
    try:
        return _train(args, registry if registry is not None else get_registry())
    except TalError as exc:
        return _error("train", exc)


def _train(args: argparse.Namespace, registry: Registry) -> int:
    cfg = load_experiment(args.config, registry, list(args.overrides or []))
    train_cfg = _train_settings(cfg, args)
    cfg = cfg.model_copy(update={"train": train_cfg})
    if cfg.data.train is None:
        raise ConfigError("data.train: `tal train` needs a training dataset")
    if cfg.data.val is not None and cfg.metric is None:
        raise ConfigError("metric: data.val is set but no metric is configured to score it")
    out = Path(train_cfg.output_dir)
    resume = args.resume
    if resume == "auto":
        resume = out / LAST if (out / LAST).is_file() else None

    ctx = init_distributed(train_cfg.device)
    try:
        seed_everything(train_cfg.seed)
        model = registry.build("models", cfg.model)
        train_set = registry.build("datasets", cfg.data.train)
        val_set = registry.build("datasets", cfg.data.val) if cfg.data.val is not None else None
        metric = registry.build("metrics", cfg.metric) if cfg.metric is not None else None
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
            (out / RESOLVED_CONFIG).write_text(text, encoding="utf-8")
        trainer = Trainer(model, train_set, val_set, metric, train_cfg, out, dist=ctx)
        if resume is not None:
            trainer.resume(resume)
        metrics = trainer.fit()
        if ctx.is_main:
            print_metrics(metrics, f"final metrics (epoch {trainer.epoch})")
            best = trainer.best
            if best["value"] is not None:
                print(f"best {best['metric']} = {best['value']:.4f} at epoch {best['epoch']}", file=sys.stderr)
            print(f"checkpoints and logs in {out}", file=sys.stderr)
    finally:
        shutdown_distributed(ctx)
    return 0


# -- tal eval -----------------------------------------------------------------------------------
def run_eval(args: argparse.Namespace, registry: Registry | None = None) -> int:
    """``tal eval``; returns the exit code (2 with a message on stderr for bad configs, data or checkpoints)."""
    try:
        return _eval(args, registry if registry is not None else get_registry())
    except TalError as exc:
        return _error("eval", exc)


def _eval(args: argparse.Namespace, registry: Registry) -> int:
    cfg = load_experiment(args.config, registry, list(args.overrides or []))
    train_cfg = _train_settings(cfg, args).model_copy(update={"ema": EmaConfig(enabled=False)})
    split_cfg = getattr(cfg.data, args.split)
    if split_cfg is None:
        raise ConfigError(f"data.{args.split}: not set; `tal eval --split {args.split}` needs that dataset")
    if cfg.metric is None:
        raise ConfigError("metric: `tal eval` needs a metric")

    ctx = init_distributed(train_cfg.device)
    try:
        seed_everything(train_cfg.seed)
        model = registry.build("models", cfg.model)
        source = load_model_weights(model, args.ckpt, prefer_ema=True)
        dataset = registry.build("datasets", split_cfg)
        metric = registry.build("metrics", cfg.metric)
        trainer = Trainer(model, None, None, metric, train_cfg, dist=ctx)
        metrics = trainer.evaluate(dataset)
        if ctx.is_main:
            print(f"evaluated {args.ckpt} ({source} weights) on data.{args.split}", file=sys.stderr)
            print_metrics(metrics, f"{args.split} metrics", as_json=args.json)
    finally:
        shutdown_distributed(ctx)
    return 0


TRAIN = Command(help="train a model from an experiment config", add_arguments=add_train_arguments, run=run_train)
EVAL = Command(help="evaluate a checkpoint on a data split", add_arguments=add_eval_arguments, run=run_eval)


def register(registry: Registry) -> None:
    """Add ``train`` and ``eval`` to the ``tal`` command."""
    registry.add_command("train", TRAIN)
    registry.add_command("eval", EVAL)
