"""``tal infer``: run a trained model on one video's feature file.

``tal infer --config CONFIG --ckpt CKPT --feat VIDEO.npy [--json OUT.json] [--save-fig [OUT.png]]
[--gt GT] [--split K] [--set path=value ...] [--device D]`` plus the flags of the model's inferencer.

The command is the same for every method: it loads the config (an experiment YAML, a preset, or a
method's own config file that a registered config format translates), builds the model, loads the
checkpoint through the registered checkpoint formats, and hands over to the inferencer that the
model's package registered for that model name (``register_inferencers``), which reads the features,
prints and writes the results.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tal.core.cli.base import Command
from tal.core.config import load_experiment
from tal.core.engine.checkpoint import load_model_weights
from tal.core.engine.distributed import resolve_device
from tal.core.errors import ConfigError
from tal.core.figures import check_figure_path
from tal.core.registry import Registry

logger = logging.getLogger(__name__)

#: the flags every inferencer gets; an inferencer's own flags must use other names
COMMON_FLAGS = ("--config", "--ckpt", "--feat", "--json", "--save-fig", "--gt", "--device", "--set", "--split")


def figure_path(args: argparse.Namespace) -> Path | None:
    """Where ``--save-fig`` writes: its path; without a path next to ``--json`` (``.png``), else
    ``VIDEO.png`` (the feature file's name) in the current folder; ``None`` without ``--save-fig``."""
    if args.save_fig is None:
        return None
    if args.save_fig:
        return Path(args.save_fig)
    if args.json is not None:
        return Path(args.json).with_suffix(".png")
    return Path(Path(args.feat).stem + ".png")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``tal infer`` that do not depend on the method."""
    parser.add_argument("--config", required=True, help="experiment YAML, preset name or a method's own config file")
    parser.add_argument("--ckpt", required=True, type=Path, help="checkpoint (tal .pt or a method's release file)")
    parser.add_argument("--feat", required=True, type=Path, help="feature file of one video (.npy/.npz/.pt)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="write the results as JSON")
    parser.add_argument(
        "--save-fig",
        "--save_fig",
        dest="save_fig",
        nargs="?",
        const="",
        default=None,
        metavar="OUT.png",
        help="draw a figure (default path: next to --json, else VIDEO.png here)",
    )
    parser.add_argument("--gt", type=Path, default=None, help="ground truth of the video, drawn and scored if given")
    parser.add_argument("--split", type=int, default=None, metavar="K", help="split K of a preset that has splits")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE", help="override a config field"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")


def add_arguments(parser: argparse.ArgumentParser, registry: Registry) -> None:
    """The common flags and every registered inferencer's own flags (in a group per model name)."""
    add_common_arguments(parser)
    for comp in registry.components("inferencers"):
        add = getattr(comp.factory, "add_arguments", None)
        if add is None:
            continue
        group = parser.add_argument_group(f"models named {comp.name!r} ({comp.owner})")
        try:
            add(group)
        except argparse.ArgumentError as exc:
            logger.warning("tal infer: flags of the %r inferencer (%s) skipped: %s", comp.name, comp.owner, exc)


def run(args: argparse.Namespace, registry: Registry) -> int:
    """Load config, model and weights, then run the model's inferencer."""
    fig = figure_path(args)
    if fig is not None:
        check_figure_path(fig)  # before any output is written
    device = resolve_device(args.device)
    cfg = load_experiment(args.config, registry, list(args.overrides or []), split=args.split)
    name = cfg.model.name
    if name not in registry.names("inferencers"):
        known = ", ".join(registry.names("inferencers")) or "none"
        raise ConfigError(f"{args.config}: model {name!r} has no `tal infer` runner; models that have one: {known}")
    inferencer = registry.get("inferencers", name).factory
    model = registry.build("models", cfg.model)
    source = load_model_weights(model, args.ckpt, registry, prefer_ema=True, config=cfg.model)
    logger.info("loaded %s (%s weights)", args.ckpt, source)
    model = model.to(device).eval()
    args.figure = fig
    return int(inferencer.run(args, model, cfg, registry) or 0)


INFER = Command(help="run a trained model on one video's features", add_arguments=add_arguments, run=run)


def register(registry: Registry) -> None:
    """Add ``infer`` to the ``tal`` command."""
    registry.add_command("infer", INFER)
