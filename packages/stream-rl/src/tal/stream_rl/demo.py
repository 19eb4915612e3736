"""``tal demo`` for tal-stream-rl: supervised-only vs supervised + RL streaming segmentation.

Data: the label sequences of the real Breakfast ground truth in ``shared/data/segmentation/breakfast``
(``--data DIR`` or found above the current folder; tal-core's embedded synthetic annotations
otherwise), every ``subsample``-th frame kept, with synthetic features (``synthetic-from-labels``):
the model meets real action orders and durations. Through the core ``Trainer``, a model is
pre-trained with the supervised loss; from its weights, one run trains the last epochs with the same
loss, one with the release's reward-weighted objective and one with REINFORCE and a TD critic (same
epochs, same schedule). All are evaluated on the held-out videos streamed clip by clip (F1@{10,25,50}, Edit, Acc of the
concatenated online labels), next to the same model run offline on each whole video as one clip,
with the per-clip latency of the stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tal.stream_rl.cli import stream_video

ARMS = (
    ("supervised", "supervised"),
    ("+RL release", "reward_weighted"),
    ("+RL TD", "reinforce_td"),
)
"""The fine-tuning runs compared after the shared supervised pre-training: (row name, objective):
supervised, the release's ``4^Dice - 1`` reward weighting, REINFORCE with a TD critic."""

CLIP_LEN, SAMPLE_RATE = 16, 2
CLIPS_PER_ITEM = 1
"""Training items of one clip: an optimizer step per clip, as the release trains."""


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads, then restore: on a shared CPU a model this small loses more to
    thread synchronisation than it gains from a second thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def demo_model(num_classes: int, input_dim: int, objective: str, init: str | None = None) -> dict[str, Any]:
    """A small ``svtas-rl`` config for the CPU: clips of 16 frames sampled every 2."""
    return {
        "name": "svtas-rl",
        "num_classes": num_classes,
        "clip_len": CLIP_LEN,
        "sample_rate": SAMPLE_RATE,
        "backbone": {"name": "stream-features", "input_dim": input_dim},
        "head": {
            "num_f_maps": 32,
            "encoder_layers": 4,
            "decoder_layers": 4,
            "num_decoders": 1,
            "state_len": 16,
            "dropout": 0.1,
            "layer_dropout": 0.1,
            "channel_masking_rate": 0.0,
        },
        "loss": {"objective": objective},
        "init_checkpoint": init,
    }


def demo_data(root: Path, videos: list[int], input_dim: int, subsample: int) -> dict[str, Any]:
    return {
        "name": "synthetic-from-labels",
        "ground_truth_dir": str(root / "groundTruth"),
        "mapping_file": str(root / "mapping.txt"),
        "videos": videos,
        "subsample": subsample,
        "input_dim": input_dim,
        "noise": 0.7,
    }


def _train(registry: Any, experiment: dict[str, Any]) -> Any:
    from tal.core.config import load_experiment
    from tal.core.engine import Trainer

    cfg = load_experiment(experiment, registry)
    torch.manual_seed(0)
    trainer = Trainer.from_experiment(cfg, registry, progress=False)
    trainer.fit()
    return trainer.model.eval()


def _evaluate(model: Any, dataset: Any) -> tuple[dict[str, float], list[float], list[np.ndarray]]:
    """Streamed scores (and ``offline F1@50`` / ``offline Edit``: the whole video as one clip)."""
    from tal.core.metrics.segmentation import SegmentationMetric

    metric = SegmentationMetric(class_names=dataset.class_names)
    offline = SegmentationMetric(class_names=dataset.class_names)
    latencies: list[float] = []
    streamed = []
    for i in range(len(dataset)):
        record = dataset[i]
        run = stream_video(model, record.features)
        latencies.extend(run.clip_seconds)
        metric.update([run.labels], [record.frame_labels], [record.video_id])
        offline.update([model.segment_whole(record.features)[0]], [record.frame_labels], [record.video_id])
        streamed.append(run.labels.numpy())
    out, off = metric.compute(), offline.compute()
    scores = {k: float(out[k]) for k in ("F1@10", "F1@25", "F1@50", "Edit", "Acc")}
    scores.update({"offline F1@50": float(off["F1@50"]), "offline Edit": float(off["Edit"])})
    return scores, latencies, streamed


def run_demo(out_dir: Path, quick: bool = False, data: Path | None = None, registry: Any = None) -> dict[str, Any]:
    """Train both models, stream the test videos, print and return the scores and the clip latency."""
    from rich.console import Console
    from rich.table import Table

    from tal.core.demo import find_sample_data, make_synthetic_data
    from tal.core.figures import save_label_bars
    from tal.core.formats import read_mapping
    from tal.core.registry import get_registry

    console = Console()
    registry = registry if registry is not None else get_registry()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = data if data is not None else find_sample_data()
    source = f"label sequences of {root}" if root is not None else "tal-core's synthetic annotations"
    if root is None:
        root = make_synthetic_data(out / "data", num_videos=20)
    n_files = len(list((Path(root) / "groundTruth").glob("*.txt")))
    test_ids = list(range(0, n_files, 5))  # every fifth video held out (all their classes occur in training)
    train_ids = [i for i in range(n_files) if i % 5]
    if quick:
        train_ids, test_ids = train_ids[:4], test_ids[:2]
    input_dim, subsample = 32, 8 if not quick else 16
    epochs, rl_epochs = (10, 3) if not quick else (2, 1)
    mapping_classes = len(read_mapping(Path(root) / "mapping.txt"))
    train_cfg = {"epochs": epochs, "batch_size": 1, "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4}}
    data_cfg = {
        "train": {
            "name": "stream-clips",
            "source": demo_data(Path(root), train_ids, input_dim, subsample),
            "clip_len": CLIP_LEN,
            "sample_rate": SAMPLE_RATE,
            "clips_per_item": CLIPS_PER_ITEM,
        },
        "val": demo_data(Path(root), test_ids, input_dim, subsample),
    }

    def experiment(objective: str, n_epochs: int, run: str, init: str | None = None) -> dict[str, Any]:
        return {
            "model": demo_model(mapping_classes, input_dim, objective, init),
            "data": data_cfg,
            "metric": {"name": "segmentation"},
            "train": {**train_cfg, "epochs": n_epochs, "eval_every": n_epochs, "output_dir": str(out / run)},
        }

    console.print(
        f"[bold]stream-rl demo[/bold]: {len(train_ids)} training / {len(test_ids)} test videos ({source}, "
        f"every {subsample}th frame, synthetic features); {epochs - rl_epochs} supervised epochs, then "
        f"{rl_epochs} more epochs either supervised or with the RL objective, on the CPU"
    )
    t0 = time.perf_counter()
    with torch_threads(1):
        _train(registry, experiment("supervised", epochs - rl_epochs, "pretrain"))
        start = str(out / "pretrain" / "last.pt")
        models = {
            name: _train(registry, experiment(objective, rl_epochs, objective, init=start)) for name, objective in ARMS
        }
    train_s = time.perf_counter() - t0

    from tal.core.config import load_experiment

    test_set = registry.build("datasets", load_experiment(experiment("supervised", 1, "x"), registry).data.val)
    rows: dict[str, dict[str, float]] = {}
    latency: dict[str, list[float]] = {}
    labels: dict[str, list[np.ndarray]] = {}
    with torch_threads(1):
        for name, model in models.items():
            rows[name], latency[name], labels[name] = _evaluate(model, test_set)
        offline = [models["supervised"].segment(test_set[i].features)[0].numpy() for i in range(len(test_set))]
    identical = all(np.array_equal(a, b) for a, b in zip(offline, labels["supervised"], strict=True))

    table = Table(title="streamed test videos (percent)")
    table.add_column("training")
    keys = ("F1@10", "F1@25", "F1@50", "Edit", "Acc", "offline F1@50", "offline Edit")
    for key in (*keys, "clip ms median/p99"):
        table.add_column(key, justify="right")
    for name, scores in rows.items():
        lat = np.asarray(latency[name]) * 1e3
        table.add_row(
            name,
            *(f"{scores[k]:.1f}" for k in keys),
            f"{np.median(lat):.1f}/{np.percentile(lat, 99):.1f}",
        )
    console.print(table)
    console.print(f"streamed labels identical to the offline run over the same clips: {identical}")
    gt0 = test_set[0].frame_labels.numpy()
    figure = save_label_bars(
        out / "stream_rl_labels.png",
        {"ground truth": gt0, **{name: labels[name][0] for name in models}},
        test_set.class_names,
        title=f"{test_set.video_ids[0]}: streamed labels",
    )
    headline: dict[str, Any] = {}
    for name, objective in ARMS:
        headline[f"{objective}_Edit"] = rows[name]["Edit"]
        headline[f"{objective}_F1@50"] = rows[name]["F1@50"]
    headline.update(
        clip_ms_median=float(np.median(np.asarray(latency["supervised"])) * 1e3),
        stream_equals_offline=identical,
        train_seconds=train_s,
    )
    (out / "stream_rl_results.json").write_text(json.dumps({"scores": rows, "headline": headline}, indent=2))
    console.print(f"results in {out / 'stream_rl_results.json'}, figure {figure}")
    return headline
