"""Small on-disk data sets made in the tests with tal-core's writers (annotation JSON + feature files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tal.core.formats import AnnotationSet, VideoAnnotation, write_annotations, write_features
from tal.core.types import Segments

TINY_MODEL: dict[str, Any] = {
    "name": "actionformer",
    "input_dim": 16,
    "num_classes": 3,
    "max_seq_len": 64,
    "backbone_arch": [2, 2, 2],
    "regression_range": [[0, 4], [4, 8], [8, 10000]],
    "n_head": 4,
    "n_mha_win_size": 5,
    "embd_dim": 32,
    "fpn_dim": 32,
    "head_dim": 32,
    "max_buffer_len_factor": 2.0,
    "test_cfg": {"max_seg_num": 50, "pre_nms_topk": 200},
}


def write_set(
    root: Path,
    videos: dict[str, dict[str, Any]],
    classes: dict[int, str],
    *,
    channels: int = 16,
    feature_dirs: tuple[str, ...] = ("features",),
    ext: str = ".npy",
    key: str = "feats",
    seed: int = 0,
) -> Path:
    """Write ``root/ann.json`` and one feature file per video and folder; returns the annotation path.

    ``videos[id]`` holds ``subset``, ``steps`` (feature length), ``segments`` ([[s, e, label], ...] in
    seconds) and optionally ``duration``, ``fps`` and ``skip_features`` (no feature file).
    """
    gen = torch.Generator().manual_seed(seed)
    anns = {}
    for vid, v in videos.items():
        segs = v.get("segments", [])
        anns[vid] = VideoAnnotation(
            vid,
            v.get("subset", "validation"),
            Segments(
                torch.tensor([[s, e] for s, e, _ in segs], dtype=torch.float64).reshape(-1, 2),
                torch.tensor([c for _, _, c in segs], dtype=torch.int64),
            ),
            duration=v.get("duration"),
            fps=v.get("fps"),
        )
        if v.get("skip_features"):
            continue
        for d in feature_dirs:
            feats = torch.randn(channels, v["steps"], generator=gen)
            write_features(root / d / f"{v.get('prefix', '')}{vid}{ext}", feats, layout="TC", key=key)
    path = root / "ann.json"
    write_annotations(path, AnnotationSet(anns, dict(classes)))
    return path


def tiny_thumos(root: Path, num_train: int = 6, num_val: int = 3, steps: int = 60, seed: int = 0) -> Path:
    """Videos of ``steps`` feature steps (stride 4 at 30 fps, 16 frames) with 1-3 actions of 3 classes."""
    gen = torch.Generator().manual_seed(seed)
    videos: dict[str, dict[str, Any]] = {}
    duration = ((steps - 1) * 4 + 16) / 30.0
    for i in range(num_train + num_val):
        n = 1 + i % 3
        segs = []
        for j in range(n):
            start = duration * j / n + 0.3
            length = 0.5 + float(torch.rand(1, generator=gen)) * (duration / n - 0.8)
            segs.append([round(start, 3), round(start + length, 3), (i + j) % 3])
        subset = "validation" if i < num_train else "test"
        videos[f"vid_{i:02d}"] = {"subset": subset, "steps": steps, "segments": segs, "duration": duration, "fps": 30}
    return write_set(root, videos, {0: "a", 1: "b", 2: "c"}, seed=seed)


def data_section(ann: Path, root: Path, **extra: Any) -> dict[str, Any]:
    """An ``actionformer-features`` config for :func:`tiny_thumos` files."""
    return {
        "name": "actionformer-features",
        "dataset_name": "thumos",
        "annotation_file": str(ann),
        "feature_dir": str(root / "features"),
        "feat_stride": 4,
        "num_frames": 16,
        "default_fps": 30,
        "max_seq_len": 64,
        "input_dim": 16,
        "num_classes": 3,
        **extra,
    }


def tiny_experiment(root: Path, epochs: int = 2, **train: Any) -> dict[str, Any]:
    """A complete experiment dict on :func:`tiny_thumos` data written under ``root``."""
    ann = tiny_thumos(root)
    return {
        "model": dict(TINY_MODEL),
        "data": {
            "train": data_section(ann, root, subset="validation", training=True, crop_ratio=[0.9, 1.0]),
            "val": data_section(ann, root, subset="test"),
        },
        "metric": {"name": "detection-map"},
        "train": {
            "epochs": epochs,
            "batch_size": 2,
            "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05},
            "scheduler": {"name": "cosine", "warmup_epochs": 1, "eta_min": 1e-8},
            "clip_grad_norm": 1.0,
            "ema": {"enabled": True, "decay": 0.9},
            "device": "cpu",
            "progress": False,
            "output_dir": str(root / "run"),
            **train,
        },
    }


def tiny_release_config(ann: Path, feature_dir: Path, **sections: Any) -> dict[str, Any]:
    """A config in the release's layout (``configs/*.yaml`` keys) for :func:`tiny_thumos` data and the
    :data:`TINY_MODEL` network; ``sections`` replace or add top-level sections."""
    skip = ("name", "input_dim", "num_classes", "max_seq_len", "test_cfg")
    return {
        "dataset_name": "thumos",
        "train_split": ["validation"],
        "val_split": ["test"],
        "dataset": {
            "json_file": str(ann),
            "feat_folder": str(feature_dir),
            "file_prefix": None,
            "file_ext": ".npy",
            "num_classes": 3,
            "input_dim": 16,
            "feat_stride": 4,
            "num_frames": 16,
            "default_fps": 30,
            "max_seq_len": 64,
        },
        "model": {k: v for k, v in TINY_MODEL.items() if k not in skip},
        "opt": {"learning_rate": 0.001, "epochs": 2},
        "test_cfg": dict(TINY_MODEL["test_cfg"]),
        **sections,
    }
