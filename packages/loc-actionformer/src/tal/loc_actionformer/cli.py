"""The ``tal`` commands of the package: the ActionFormer runner of ``tal infer`` and ``tal actionformer convert``.

``tal infer --config CONFIG --ckpt CKPT --feat VIDEO.npy [--fps F] [--duration S] [--top-k K]
[--save-fig [OUT.png]] [--json OUT.json] [--gt GT.json] [--set path=value ...] [--device D]``

Core's ``tal infer`` loads CONFIG (a release YAML as it is, a tal experiment YAML or a preset name),
builds the model, loads CKPT through the checkpoint formats (the release's layout is registered by
:mod:`tal.loc_actionformer.release.checkpoint`), checks ``--device`` and ``--save-fig`` and hands over
to :data:`INFERENCER`:

- the feature file is read in the layout of the config's dataset (``(T, C)``; ``.npz`` key ``feats``
  for EPIC), downsampled or resized as its loader does, and run with the config's ``test_cfg``;
- the frame rate is ``--fps``, else the dataset's ``default_fps``, else the one the release's
  annotation file gives every video of the dataset (THUMOS14: 30 fps); the duration is
  ``--duration``, else the features' span ``((T - 1) * feat_stride + num_frames) / fps``; both are
  printed with where they came from and written to the JSON. A ``--duration`` shorter than the span
  is warned about and the detections past it are dropped;
- ``--top-k K`` (or the release's ``--top_k``) keeps the K best detections (it sets ``max_seg_num``,
  as the release's ``eval.py --topk``); without it every detection is written and the 10 best printed;
- ``--gt`` (an annotation file holding the video) draws the ground truth in the figure and scores the
  detections with the config's metric.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from tal.core.cli.base import Command
from tal.core.config import load_experiment, read_yaml
from tal.core.errors import ConfigError, DataFormatError
from tal.core.formats import AnnotationSet, atomic_write_text, read_annotations, read_features, results_to_json
from tal.core.registry import Registry
from tal.core.types import Segments
from tal.loc_actionformer.config import ActionFormerConfig
from tal.loc_actionformer.data import (
    MISSING_DURATION,
    RELEASE_VIDEO_FPS,
    ActionFormerFeaturesConfig,
    prepare_features,
)
from tal.loc_actionformer.modeling.meta_arch import ActionFormer
from tal.loc_actionformer.postprocess import load_class_scores
from tal.loc_actionformer.release.translate import is_release_config, translate_release_config

logger = logging.getLogger(__name__)

DEFAULT_ROWS = 10


@dataclass(frozen=True)
class VideoTiming:
    """How one feature file maps to seconds, and where each number came from."""

    video_id: str
    feature_steps: int
    fps: float
    fps_from: str
    duration: float
    duration_from: str

    def header(self) -> str:
        return (
            f"{self.video_id}: {self.feature_steps} feature steps; {self.fps:g} fps ({self.fps_from}); "
            f"duration {self.duration:.2f} s ({self.duration_from})"
        )


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


def video_timing(
    video_id: str, steps: int, ds: ActionFormerFeaturesConfig, fps: float | None, duration: float | None
) -> VideoTiming:
    """The frame rate and duration of a video of ``steps`` feature steps (see the module docs)."""
    if fps is not None:
        fps_from = "--fps"
    elif ds.default_fps is not None:
        fps, fps_from = float(ds.default_fps), "the dataset's default_fps"
    elif ds.dataset_name in RELEASE_VIDEO_FPS:
        fps = RELEASE_VIDEO_FPS[ds.dataset_name]
        fps_from = f"every video of the release's {ds.dataset_name} annotations has it"
    else:
        raise ConfigError(f"the config sets no default_fps for its {ds.dataset_name!r} dataset: pass --fps")
    span = ((steps - 1) * ds.feat_stride + ds.num_frames) / fps if ds.feat_stride > 0 else None
    if duration is None:
        if span is None:
            raise ConfigError("fixed-length features (feat_stride <= 0) need the video length: pass --duration")
        return VideoTiming(video_id, steps, fps, fps_from, span, "the features' span")
    if span is not None and duration < span - 1e-6:
        logger.warning(
            "--duration %.2f s is shorter than the span of the %d feature steps (%.2f s at %g fps): detections "
            "are clipped to it and those past it dropped",
            duration,
            steps,
            span,
            fps,
        )
    return VideoTiming(video_id, steps, fps, fps_from, float(duration), "--duration")


def infer_video(
    model: ActionFormer, features: torch.Tensor, ds: ActionFormerFeaturesConfig, timing: VideoTiming
) -> Segments:
    """Detections (seconds, descending score) of one video's raw ``(C, T)`` features."""
    feats, stride, nframes = prepare_features(features, ds, timing.fps, timing.duration)
    batch = {
        "video_ids": [timing.video_id],
        "fps": [timing.fps],
        "feat_stride": [stride],
        "num_frames": [nframes],
        "duration": [timing.duration],
    }
    model.eval()
    with torch.inference_mode():
        (dets,) = model.postprocess(model.detect([feats]), batch, drop_empty=True)
    return dets.sorted_by_score()


def ground_truth(path: Path, video_id: str, ds: ActionFormerFeaturesConfig) -> tuple[Segments, AnnotationSet]:
    """The annotations of ``video_id`` (or of it without the dataset's ``file_prefix``) in ``path``."""
    annotations = read_annotations(path, ignore_labels=ds.ignore_labels)
    prefix = ds.file_prefix or ""
    candidates = [video_id] + ([video_id[len(prefix) :]] if prefix and video_id.startswith(prefix) else [])
    for vid in candidates:
        if vid in annotations.videos:
            return annotations.videos[vid].segments, annotations
    raise DataFormatError(path, f"no annotations of video {' or '.join(map(repr, candidates))} (--gt)")


def class_names_of(ds: ActionFormerFeaturesConfig, gt: AnnotationSet | None) -> list[str] | None:
    """Class names by id: from ``--gt``, else from the dataset's annotation file when it is here."""
    if gt is not None:
        return gt.class_names
    if Path(ds.annotation_file).is_file():
        try:
            return read_annotations(ds.annotation_file, ignore_labels=ds.ignore_labels).class_names
        except DataFormatError as exc:
            logger.info("no class names: %s", exc)
    return None


def print_table(dets: Segments, rows: int, timing: VideoTiming, class_names: list[str] | None) -> None:
    from rich.console import Console
    from rich.table import Table

    assert dets.scores is not None
    shown = min(rows, len(dets))
    table = Table(title=f"top {shown} of {len(dets)} detections")
    for col in ("#", "start (s)", "end (s)", "class", "score"):
        table.add_column(col, justify="right")
    for i in range(shown):
        s, e = dets.segments[i].tolist()
        label = int(dets.labels[i])
        name = f"{label}: {class_names[label]}" if class_names and label < len(class_names) else str(label)
        table.add_row(str(i + 1), f"{s:.2f}", f"{e:.2f}", name, f"{float(dets.scores[i]):.4f}")
    console = Console(file=sys.stdout)
    console.print(timing.header(), highlight=False)
    console.print(table)


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
        parser.add_argument(
            "--top-k", "--top_k", dest="top_k", type=int, default=None, metavar="K", help="keep the K best detections"
        )

    def run(self, args: argparse.Namespace, model: ActionFormer, experiment: Any, registry: Registry) -> int:
        ds = dataset_config(experiment, args.config)
        if args.top_k is not None:
            if args.top_k < 1:
                raise ConfigError(f"--top-k must be >= 1, got {args.top_k}")
            model.test_cfg = model.test_cfg.model_copy(update={"max_seg_num": args.top_k})
        if args.duration is not None and not 0 < args.duration < MISSING_DURATION:
            raise ConfigError(f"--duration must be a positive number of seconds, got {args.duration}")
        if args.fps is not None and args.fps <= 0:
            raise ConfigError(f"--fps must be positive, got {args.fps}")
        feats = read_video_features(args.feat, ds, model.config)
        video_id = args.feat.stem
        gt, gt_set = ground_truth(args.gt, video_id, ds) if args.gt is not None else (None, None)
        timing = video_timing(video_id, feats.shape[-1], ds, args.fps, args.duration)
        _prepare_fusion(model, video_id)
        dets = infer_video(model, feats, ds, timing)
        class_names = class_names_of(ds, gt_set)
        print_table(dets, args.top_k or DEFAULT_ROWS, timing, class_names)
        if gt is not None and experiment.metric is not None:
            metric = registry.build("metrics", experiment.metric)
            metric.update([dets], [gt], [video_id])
            scores = metric.compute()
            print(f"against {args.gt}: average mAP {scores['average_mAP']:.2f}")
        if args.json is not None:
            data = {**results_to_json({video_id: dets}), "video": asdict(timing)}
            atomic_write_text(args.json, json.dumps(data, indent=1) + "\n")
            logger.info("wrote %s", args.json)
        if args.figure is not None:
            from tal.core.figures import save_timeline

            save_timeline(
                args.figure,
                dets,
                timing.duration,
                title=f"{video_id}: ActionFormer detections ({timing.fps:g} fps)",
                class_names=class_names,
                ground_truth=gt,
            )
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
