"""The ``tal`` commands of the package: the ActionFormer runner of ``tal infer`` and ``tal actionformer convert``.

``tal infer --config CONFIG --ckpt CKPT --feat VIDEO.npy [--fps F] [--duration S] [--top-k K]
[--save-fig [OUT.png]] [--json OUT.json] [--set path=value ...] [--device D]``

Core's ``tal infer`` loads CONFIG (a release YAML as it is, a tal experiment YAML or a preset name),
builds the model, loads CKPT through the checkpoint formats (the release's layout is registered by
:mod:`tal.loc_actionformer.release.checkpoint`) and hands over to :data:`INFERENCER`. The feature
file is read in the layout of the config's dataset (``(T, C)``; ``.npz`` key ``feats`` for EPIC),
downsampled or resized as its loader does, and run with the config's ``test_cfg``. ``--top-k K``
keeps the K best detections (the release's ``eval.py --topk``: it sets ``max_seg_num``); without it
every detection is written and the 10 best are printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from tal.core.cli.base import Command
from tal.core.config import load_experiment, read_yaml
from tal.core.errors import ConfigError, DataFormatError
from tal.core.formats import atomic_write_text, read_features
from tal.core.registry import Registry
from tal.core.types import Segments
from tal.loc_actionformer.config import ActionFormerConfig
from tal.loc_actionformer.data import MISSING_DURATION, ActionFormerFeaturesConfig, prepare_features
from tal.loc_actionformer.modeling.meta_arch import ActionFormer
from tal.loc_actionformer.postprocess import load_class_scores
from tal.loc_actionformer.release.translate import is_release_config, translate_release_config

logger = logging.getLogger(__name__)

DEFAULT_ROWS = 10


def dataset_config(cfg: Any, source: str) -> ActionFormerFeaturesConfig:
    """The dataset section (``data.test``, else ``val``, else ``train``) that says how to read a feature file."""
    ds = cfg.data.test or cfg.data.val or cfg.data.train
    if not isinstance(ds, ActionFormerFeaturesConfig):
        raise ConfigError(
            f"{source}: `tal infer` needs a data section of type 'actionformer-features' (for feat_stride, "
            "num_frames, default_fps and the feature layout)"
        )
    return ds


def read_video_features(path: Path, ds: ActionFormerFeaturesConfig, model_cfg: ActionFormerConfig) -> torch.Tensor:
    """``(C, T)`` features of one file, with errors that say what to change."""
    try:
        feats = read_features(path, layout=ds.feature_layout, key=ds.array_key)
    except DataFormatError as exc:
        msg = str(exc)
        if "empty features" in msg:
            raise DataFormatError(path, "the feature file is empty (no time steps); re-extract the features") from None
        if "non-finite" in msg or "overflows" in msg:
            raise DataFormatError(
                path, f"{msg.split(': ', 1)[-1]}; the features must be finite: re-extract them or replace NaN/inf"
            ) from None
        raise
    expected = model_cfg.input_dim if isinstance(model_cfg.input_dim, int) else sum(model_cfg.input_dim)
    if feats.shape[0] != expected:
        swapped = feats.shape[1] == expected
        hint = (
            f"the file looks transposed: store it as (T, C) = ({feats.shape[0]}, {feats.shape[1]}) transposed, "
            f"or set data.val.feature_layout={'CT' if ds.feature_layout == 'TC' else 'TC'}"
            if swapped
            else "use features of the extractor the model was trained on, or a config whose input_dim matches"
        )
        raise DataFormatError(
            path,
            f"features have {feats.shape[0]} channels but the model expects input_dim={expected} "
            f"(read as {ds.feature_layout}: shape {tuple(feats.shape)} as (C, T)); {hint}",
        )
    return feats


def infer_video(
    model: ActionFormer,
    features: torch.Tensor,
    ds: ActionFormerFeaturesConfig,
    video_id: str,
    fps: float | None = None,
    duration: float | None = None,
) -> tuple[Segments, float]:
    """Detections (seconds, descending score) of one video's raw ``(C, T)`` features and its duration."""
    fps = fps if fps is not None else ds.default_fps
    if fps is None:
        raise ConfigError("the config has no dataset default_fps: pass --fps")
    steps = features.shape[-1]
    if duration is None:
        if ds.feat_stride <= 0:
            raise ConfigError("fixed-length features (feat_stride <= 0) need the video length: pass --duration")
        duration = ((steps - 1) * ds.feat_stride + ds.num_frames) / fps
    feats, stride, nframes = prepare_features(features, ds, fps, duration)
    batch = {
        "video_ids": [video_id],
        "features": [feats],
        "fps": [fps],
        "feat_stride": [stride],
        "num_frames": [nframes],
        "duration": [duration],
    }
    model.eval()
    with torch.inference_mode():
        (dets,) = model(batch)
    return dets.sorted_by_score(), float(duration)


def results_json(video_id: str, dets: Segments) -> dict[str, Any]:
    """``{"results": {video_id: [{"segment", "label", "score"}, ...]}}``."""
    assert dets.scores is not None
    items = [
        {"segment": [float(s), float(e)], "label": int(lab), "score": float(sc)}
        for (s, e), lab, sc in zip(dets.segments.tolist(), dets.labels.tolist(), dets.scores.tolist(), strict=True)
    ]
    return {"results": {video_id: items}}


def print_table(video_id: str, dets: Segments, rows: int, duration: float) -> None:
    from rich.console import Console
    from rich.table import Table

    assert dets.scores is not None
    shown = min(rows, len(dets))
    table = Table(title=f"{video_id}: top {shown} of {len(dets)} detections ({duration:.1f} s)")
    for col in ("#", "start (s)", "end (s)", "class", "score"):
        table.add_column(col, justify="right")
    for i in range(shown):
        s, e = dets.segments[i].tolist()
        table.add_row(str(i + 1), f"{s:.2f}", f"{e:.2f}", str(int(dets.labels[i])), f"{float(dets.scores[i]):.4f}")
    Console(file=sys.stdout).print(table)


def _prepare_fusion(model: ActionFormer, video_id: str) -> None:
    """Keep score fusion only when the score file knows the video; otherwise warn and report proposals."""
    path = model.test_cfg.ext_score_file
    if not path:
        return
    if Path(path).is_file():
        model.class_scores = load_class_scores(path)
        if video_id in model.class_scores:
            return
        why = f"{path} has no scores for {video_id!r}"
    else:
        why = f"{path} not found"
    logger.warning("no score fusion (%s); labels are the model's own", why)
    model.test_cfg = model.test_cfg.model_copy(update={"ext_score_file": None})


class ActionFormerInferencer:
    """What ``tal infer`` runs for models named ``actionformer`` (see the module docs)."""

    help = "detect actions in one video's features with an ActionFormer checkpoint"

    def add_arguments(self, parser: argparse._ActionsContainer) -> None:
        parser.add_argument("--fps", type=float, default=None, help="frames per second (default: the config's)")
        parser.add_argument("--duration", type=float, default=None, help="video length in s (default: the features')")
        parser.add_argument("--top-k", type=int, default=None, metavar="K", help="keep the K best detections")

    def run(self, args: argparse.Namespace, model: ActionFormer, experiment: Any, registry: Registry) -> int:
        ds = dataset_config(experiment, args.config)
        if args.top_k is not None:
            if args.top_k < 1:
                raise ConfigError("--top-k must be >= 1")
            model.test_cfg = model.test_cfg.model_copy(update={"max_seg_num": args.top_k})
        if args.duration is not None and not 0 < args.duration < MISSING_DURATION:
            raise ConfigError(f"--duration must be a positive number of seconds, got {args.duration}")
        if args.fps is not None and args.fps <= 0:
            raise ConfigError(f"--fps must be positive, got {args.fps}")
        feats = read_video_features(args.feat, ds, model.config)
        video_id = args.feat.stem
        _prepare_fusion(model, video_id)
        dets, duration = infer_video(model, feats, ds, video_id, fps=args.fps, duration=args.duration)
        print_table(video_id, dets, args.top_k or DEFAULT_ROWS, duration)
        if args.json is not None:
            atomic_write_text(args.json, json.dumps(results_json(video_id, dets), indent=1) + "\n")
            logger.info("wrote %s", args.json)
        if args.figure is not None:
            from tal.core.figures import save_timeline

            save_timeline(args.figure, dets, duration, title=f"{video_id}: ActionFormer detections")
            logger.info("wrote %s", args.figure)
        return 0


INFERENCER = ActionFormerInferencer()


def _add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    conv = sub.add_parser("convert", help="translate a release config file into a tal experiment YAML")
    conv.add_argument("config", type=Path, help="release YAML (configs/*.yaml of the release)")
    conv.add_argument("-o", "--output", type=Path, default=None, help="output YAML (default: print it)")


def _run_convert(args: argparse.Namespace, registry: Registry) -> int:
    import yaml

    data = read_yaml(args.config)
    if not is_release_config(data):
        raise ConfigError(f"{args.config}: not a release config (no dataset_name/dataset/opt keys)")
    exp = translate_release_config(data, args.config)
    load_experiment(exp, registry)  # validate
    text = f"# translated from {args.config} by `tal actionformer convert`\n" + yaml.safe_dump(exp, sort_keys=False)
    if args.output is None:
        print(text, end="")
    else:
        atomic_write_text(args.output, text)
        logger.info("wrote %s", args.output)
    return 0


ACTIONFORMER = Command(
    help="ActionFormer tools: `convert` a release config into a tal experiment YAML",
    add_arguments=_add_convert_arguments,
    run=_run_convert,
)
