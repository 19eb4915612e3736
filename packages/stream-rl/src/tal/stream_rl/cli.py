"""``tal stream``: stream one video's features through a trained SVTAS-RL model, as frames would arrive.

``tal stream --config C --ckpt K --feat VIDEO.npy [--clip N] [--gt GT.txt [--mapping mapping.txt]]
[--feat-layout CT|TC] [--fps F] [--threads N] [--json OUT.json] [--split K] [--set path=value] [--device D]``

The features are pushed ``N`` frames at a time (default: one clip's ``W`` frames) into a
:class:`~tal.stream_rl.StreamingSegmenter`; the command prints the latency of every clip (median, p99,
max), the frames per second and the real-time factor at ``--fps``, and with ``--gt`` F1@{10,25,50},
Edit and Acc of the concatenated online labels (MS-TCN's evaluator), next to those of the same model
run offline on the whole video as one clip. ``tal infer`` runs the same for
``svtas-rl`` configs (:data:`INFERENCER`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tal.core.cli.base import Command
from tal.core.errors import ConfigError, DataFormatError, TalError
from tal.core.registry import Registry
from tal.stream_rl.streaming import StreamingSegmenter

logger = logging.getLogger(__name__)


@dataclass
class StreamRun:
    """The outcome of streaming one video."""

    labels: torch.Tensor  # (T,) int64
    probs: torch.Tensor  # (T, K)
    clip_seconds: list[float]
    push_seconds: list[float]
    total_seconds: float

    def latency_summary(self, fps: float, window: int) -> dict[str, float]:
        """Median / p99 / max clip latency (ms), frames per second, real-time factor at ``fps``."""
        lat = np.asarray(self.clip_seconds) if self.clip_seconds else np.zeros(1)
        frames = int(self.labels.shape[0])
        fps_measured = frames / self.total_seconds if self.total_seconds > 0 else float("inf")
        return {
            "clips": float(len(self.clip_seconds)),
            "clip_ms_median": float(np.median(lat) * 1e3),
            "clip_ms_p99": float(np.percentile(lat, 99) * 1e3),
            "clip_ms_max": float(lat.max() * 1e3),
            "frames_per_second": fps_measured,
            "realtime_factor": fps_measured / fps,
            "clip_seconds_of_video": window / fps,
        }


def stream_video(model: Any, video: torch.Tensor, piece: int | None = None) -> StreamRun:
    """Push ``video (C, T, ...)`` ``piece`` frames at a time (default one clip) and flush."""
    stream = StreamingSegmenter(model)
    step = piece or model.clip_spec.window
    if step < 1:
        raise ConfigError(f"--clip: frames per push must be >= 1, got {step}")
    labels, probs, clip_seconds, push_seconds = [], [], [], []
    t_start = time.perf_counter()
    for pos in range(0, video.shape[1], step):
        t0 = time.perf_counter()
        out = stream.push(video[:, pos : pos + step])
        push_seconds.append(time.perf_counter() - t0)
        labels.append(out.labels)
        probs.append(out.probs)
        clip_seconds.extend(out.clip_seconds)
    rest = stream.flush()
    labels.append(rest.labels)
    probs.append(rest.probs)
    clip_seconds.extend(rest.clip_seconds)
    total = time.perf_counter() - t_start
    return StreamRun(torch.cat(labels), torch.cat(probs), clip_seconds, push_seconds, total)


def read_labels(path: Path, class_names: list[str] | None, mapping: Path | None) -> tuple[np.ndarray, list[str] | None]:
    """Ground truth of one video: an MS-TCN label file (names, with ``mapping.txt``) or integer ids (``.npy``/``.txt``).

    The mapping defaults to ``mapping.txt`` next to the file or in its parent folder (MS-TCN layout).
    """
    from tal.core.formats import read_ground_truth, read_mapping

    if path.suffix == ".npy":
        return np.load(path).astype(np.int64).reshape(-1), class_names
    if mapping is None:
        for candidate in (path.parent / "mapping.txt", path.parent.parent / "mapping.txt"):
            if candidate.is_file():
                mapping = candidate
                break
    if mapping is None:
        try:
            return np.loadtxt(path, dtype=np.int64).reshape(-1), class_names
        except ValueError:
            raise DataFormatError(path, "labels are names but no mapping.txt was found; pass --mapping") from None
    names = read_mapping(mapping)
    return read_ground_truth(path, names), list(names)


def score(labels: np.ndarray, gt: np.ndarray, class_names: list[str] | None) -> dict[str, float]:
    """F1@{10,25,50}, Edit, Acc (percent) of one video; background = a class named ``background``."""
    from tal.core.metrics.segmentation import SegmentationMetric

    if len(labels) != len(gt):
        raise DataFormatError("--gt", f"{len(gt)} ground-truth frames but {len(labels)} streamed frames")
    metric = SegmentationMetric(class_names=class_names, background_ids=None if class_names else [])
    metric.update([labels], [gt], ["video"])
    out = metric.compute()
    return {k: float(out[k]) for k in ("F1@10", "F1@25", "F1@50", "Edit", "Acc")}


def report(run: StreamRun, summary: dict[str, float], metrics: dict[str, float] | None, out_json: Path | None) -> None:
    """Print the latency table (and metrics) to stdout; write the JSON if asked."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"streamed {int(run.labels.shape[0])} frames in {int(summary['clips'])} clips")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("clip latency median (ms)", f"{summary['clip_ms_median']:.2f}")
    table.add_row("clip latency p99 (ms)", f"{summary['clip_ms_p99']:.2f}")
    table.add_row("clip latency max (ms)", f"{summary['clip_ms_max']:.2f}")
    table.add_row("frames per second", f"{summary['frames_per_second']:.1f}")
    table.add_row("real-time factor", f"{summary['realtime_factor']:.1f}x")
    for key, value in (metrics or {}).items():
        table.add_row(key, f"{value:.2f}")
    Console(file=sys.stdout).print(table)
    if out_json is not None:
        from tal.core.formats import atomic_write_text

        doc = {"labels": run.labels.tolist(), "latency": summary, "clip_seconds": run.clip_seconds, "metrics": metrics}
        atomic_write_text(out_json, json.dumps(doc))


def _feature_tensor(args: argparse.Namespace, model: Any) -> torch.Tensor:
    from tal.core.formats import read_features

    expected = getattr(getattr(model, "backbone", None), "input_dim", None)
    return read_features(args.feat, layout=getattr(args, "feat_layout", "CT"), expected_channels=expected)


def run_on_model(args: argparse.Namespace, model: Any, class_names: list[str] | None = None) -> int:
    """Stream ``args.feat`` through ``model`` and report (shared by ``tal stream`` and ``tal infer``)."""
    threads = getattr(args, "threads", None)
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    video = _feature_tensor(args, model)
    run = stream_video(model, video, getattr(args, "clip", None))
    summary = run.latency_summary(getattr(args, "fps", 30.0), model.clip_spec.window)
    metrics = None
    gt = None
    if args.gt is not None:
        gt, class_names = read_labels(Path(args.gt), class_names, getattr(args, "mapping", None))
        metrics = score(run.labels.numpy(), gt, class_names)
        offline = score(model.segment_whole(video)[0].numpy(), gt, class_names)
        metrics.update({f"{key} (offline: whole video as one clip)": value for key, value in offline.items()})
    report(run, summary, metrics, getattr(args, "json", None))
    figure = getattr(args, "figure", None)
    if figure is not None:
        from tal.core.figures import save_label_bars

        rows = {"streamed": run.labels.numpy()}
        if gt is not None:
            rows = {"ground truth": gt, **rows}
        save_label_bars(figure, rows, class_names, title=f"{Path(args.feat).stem}: streamed labels")
    return 0


def _dataset_classes(cfg: Any, registry: Registry) -> list[str] | None:
    """Class names of the config's test/val dataset when it can be built cheaply (MS-TCN mapping)."""
    for split in ("test", "val", "train"):
        section = getattr(cfg.data, split, None)
        root, mapping = getattr(section, "root", None), getattr(section, "mapping_file", None)
        if root and mapping and (Path(root) / mapping).is_file():
            from tal.core.formats import read_mapping

            return list(read_mapping(Path(root) / mapping))
    return None


# -- tal stream ----------------------------------------------------------------------------------
def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tal stream``."""
    parser.add_argument("--config", required=True, help="experiment YAML or preset (stream-rl/gtea, ...)")
    parser.add_argument("--ckpt", required=True, type=Path, help="trained weights (tal checkpoint)")
    parser.add_argument("--feat", required=True, type=Path, help="features of one video (.npy/.npz/.pt)")
    _add_stream_options(parser, prefix="")
    parser.add_argument("--mapping", type=Path, default=None, help="mapping.txt of --gt label names")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="write labels, latency and metrics")
    parser.add_argument("--split", type=int, default=None, metavar="K", help="split K of a preset with splits")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE", help="override a config field"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--gt", type=Path, default=None, help="ground truth of the video (MS-TCN .txt or ids .npy)")


def _add_stream_options(parser: Any, prefix: str) -> None:
    """``--clip``, ``--feat-layout``, ``--fps`` (``tal infer`` gets them as ``--stream-piece`` etc.)."""
    clip_flag = "--stream-piece" if prefix else "--clip"
    parser.add_argument(
        clip_flag, dest="clip", type=int, default=None, metavar="N", help="frames per push (default: one clip)"
    )
    parser.add_argument(
        f"--{prefix}feat-layout",
        dest="feat_layout",
        choices=("CT", "TC"),
        default="CT",
        help="axis order on disk (MS-TCN: CT)",
    )
    parser.add_argument(
        f"--{prefix}fps", dest="fps", type=float, default=30.0, help="frame rate of the real-time factor"
    )
    parser.add_argument(
        f"--{prefix}threads",
        dest="threads",
        type=int,
        default=None,
        metavar="N",
        help="torch intra-op threads (on a busy machine 1 can beat several for a single stream)",
    )


def run_stream(args: argparse.Namespace, registry: Registry) -> int:
    """``tal stream``; returns the exit code (2 with one line on stderr for bad input)."""
    try:
        return _stream(args, registry)
    except TalError as exc:
        print(f"tal stream: error: {exc}", file=sys.stderr)
        return 2


def _stream(args: argparse.Namespace, registry: Registry) -> int:
    from tal.core.config import load_experiment
    from tal.core.engine.checkpoint import load_model_weights
    from tal.core.engine.distributed import resolve_device

    cfg = load_experiment(args.config, registry, list(args.overrides or []), split=args.split)
    if cfg.model.name != "svtas-rl":
        raise ConfigError(f"{args.config}: model {cfg.model.name!r}; `tal stream` runs svtas-rl models")
    model = registry.build("models", cfg.model)
    source = load_model_weights(model, args.ckpt, registry, prefer_ema=True, config=cfg.model)
    logger.info("loaded %s (%s weights)", args.ckpt, source)
    model = model.to(resolve_device(args.device)).eval()
    return run_on_model(args, model, _dataset_classes(cfg, registry))


STREAM = Command(
    help="stream a video's features through an SVTAS-RL model: per-clip latency and metrics",
    add_arguments=add_stream_arguments,
    run=run_stream,
)


class StreamInferencer:
    """``tal infer`` for ``svtas-rl`` configs: the stream of ``tal stream`` on ``--feat``."""

    help = "stream the video clip by clip; latency, labels, metrics with --gt, colour bars with --save-fig"

    def add_arguments(self, parser: Any) -> None:
        _add_stream_options(parser, prefix="stream-")

    def run(self, args: argparse.Namespace, model: Any, experiment: Any, registry: Registry) -> int:
        return run_on_model(args, model, _dataset_classes(experiment, registry))


INFERENCER = StreamInferencer()
