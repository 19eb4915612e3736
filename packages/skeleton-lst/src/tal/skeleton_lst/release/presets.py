"""Presets ``skeleton-lst/<benchmark>-<stream>``: LST with the published training settings.

Benchmarks: ``ntu60-xsub``, ``ntu60-xview``, ``ntu120-xsub``, ``ntu120-xset`` and ``ucla``; streams
``joint``, ``bone``, ``joint_motion``, ``bone_motion``. As in the release, the bone streams use the
bone model (``k = 1``: bones computed inside the model) on joint input, and the motion streams feed
joint motion (``vel``) to the joint or bone model. Training (facts of the release's configs): SGD with
Nesterov momentum 0.9, 110 epochs, 5 warmup epochs (lr·(e+1)/5, once per epoch), learning rate times 0.1 at
epochs 90 and 100
(counted from the start, as the release's ``adjust_learning_rate``); NTU: lr 0.1, weight decay 5e-4,
batch 200; NW-UCLA: lr 0.2, weight decay 4e-4, batch 64. Data paths follow the release layout
(``./data/ntu/NTU60_CS.npz``, ``./data/NW-UCLA/all_sqe``); override with ``--set data.train.data_path=...``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["BENCHMARK_FILES", "STREAMS", "preset", "preset_loaders"]

PREFIX = "skeleton-lst/"
STREAMS: dict[str, tuple[str, str]] = {  # stream -> (model modality, data modality)
    "joint": ("joint", "joint"),
    "bone": ("bone", "joint"),
    "joint_motion": ("joint", "joint_motion"),
    "bone_motion": ("bone", "joint_motion"),
}
#: benchmark -> (npz file of the widely used preprocessing, number of classes)
BENCHMARK_FILES: dict[str, tuple[str, int]] = {
    "ntu60-xsub": ("./data/ntu/NTU60_CS.npz", 60),
    "ntu60-xview": ("./data/ntu/NTU60_CV.npz", 60),
    "ntu120-xsub": ("./data/ntu120/NTU120_CSub.npz", 120),
    "ntu120-xset": ("./data/ntu120/NTU120_CSet.npz", 120),
}
UCLA_ROOT = "./data/NW-UCLA/all_sqe"


def _train(lr: float, weight_decay: float, batch_size: int, output: str) -> dict[str, Any]:
    return {
        "epochs": 110,
        "batch_size": batch_size,
        "eval_batch_size": batch_size,
        "num_workers": 4,
        "optimizer": {"name": "sgd", "lr": lr, "momentum": 0.9, "nesterov": True, "weight_decay": weight_decay},
        "scheduler": {
            "name": "multistep",
            "warmup_epochs": 5,
            "warmup_per_epoch": True,  # lr * (e + 1) / 5, set once per epoch as adjust_learning_rate does
            "milestones": [90, 100],
            "gamma": 0.1,
        },
        "eval_every": 5,
        "best_metric": "top1",
        "output_dir": output,
    }


def preset(benchmark: str, stream: str) -> dict[str, Any]:
    """The raw experiment dict of ``skeleton-lst/<benchmark>-<stream>``."""
    model_modality, data_modality = STREAMS[stream]
    output = f"runs/lst/{benchmark}-{stream}"
    if benchmark == "ucla":
        data = {"name": "nw-ucla", "root": UCLA_ROOT, "modality": data_modality}
        return {
            "model": {"name": "lst", "num_class": 10, "dataset": "ucla", "modality": model_modality},
            "data": {"train": {**data, "split": "train", "repeat": 5}, "val": {**data, "split": "val"}},
            "metric": {"name": "recognition", "top_k": [1, 5], "num_classes": 10},
            "train": _train(0.2, 4e-4, 64, output),
        }
    path, num_class = BENCHMARK_FILES[benchmark]
    ntu = {
        "name": "ntu-skeleton",
        "data_path": path,
        "modality": data_modality,
        "num_classes": num_class,
        "window_size": 64,
    }
    return {
        "model": {"name": "lst", "num_class": num_class, "dataset": "ntu", "modality": model_modality},
        "data": {
            "train": {**ntu, "split": "train", "p_interval": [0.5, 1.0], "random_rot": True},
            "val": {**ntu, "split": "test", "p_interval": [0.95]},
        },
        "metric": {"name": "recognition", "top_k": [1, 5], "num_classes": num_class},
        "train": _train(0.1, 5e-4, 200, output),
    }


def preset_loaders() -> dict[str, tuple[Callable[[], dict[str, Any]], str]]:
    """``{"skeleton-lst/<benchmark>-<stream>": (loader, description)}`` for the registry."""

    def loader_for(benchmark: str, stream: str) -> Callable[[], dict[str, Any]]:
        return lambda: preset(benchmark, stream)

    out = {}
    for benchmark in (*BENCHMARK_FILES, "ucla"):
        for stream in STREAMS:
            description = f"LST {stream.replace('_', '-')} stream on {benchmark} with the published settings"
            out[f"{PREFIX}{benchmark}-{stream}"] = (loader_for(benchmark, stream), description)
    return out
