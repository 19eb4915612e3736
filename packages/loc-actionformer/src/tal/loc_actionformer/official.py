"""Translating the release's config files into tal experiment configs.

A release config (``dataset_name``, ``dataset``, ``model``, ``opt``, ``loader``, ``train_cfg``,
``test_cfg``, ... merged over the release's defaults) becomes the raw dict of an experiment YAML:

- ``model``: :class:`~tal.loc_actionformer.config.ActionFormerConfig` (``name: actionformer``) with
  ``head_empty_cls`` from the dataset as the release's ``train.py`` sets it (THUMOS14: ``[4]``; EPIC:
  the classes without annotations, when the annotation file is readable at translation time);
- ``data.train`` / ``data.val``: ``actionformer-features`` on ``train_split`` / ``val_split``;
- ``metric``: ``detection-map`` at the release's tIoU thresholds for the dataset (THUMOS14 0.3:0.7,
  ActivityNet 0.5:0.95, EPIC and Ego4D 0.1:0.5; Recall@1x/5x);
- ``train``: AdamW (or SGD) with the release's learning rate and weight decay, ``epochs =
  opt.epochs + opt.warmup_epochs`` (the release trains the warmup on top), linear warmup + cosine
  (its ``eta_min`` 1e-8) or multistep, gradient clipping (``clip_grad_l2norm``), model EMA (decay
  0.999), batch size and workers of ``loader``, seed ``init_rand_seed``, best checkpoint by
  ``average_mAP``, output ``<output_folder>/<config name>``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tal.core.config import read_yaml
from tal.core.errors import ConfigError
from tal.loc_actionformer.config import official_config_dict

OFFICIAL_KEYS = ("dataset_name", "dataset", "opt", "train_split", "val_split", "loader")
RELEASE_TIOU: dict[str, list[float]] = {
    "thumos": [0.3, 0.4, 0.5, 0.6, 0.7],
    "anet": [round(0.5 + 0.05 * i, 2) for i in range(10)],
    "epic": [0.1, 0.2, 0.3, 0.4, 0.5],
    "ego4d": [0.1, 0.2, 0.3, 0.4, 0.5],
}
THUMOS_EMPTY_CLASSES = [4]
COSINE_ETA_MIN = 1e-8
EMA_DECAY = 0.999
_DATASET_KEYS = {
    "feat_stride": "feat_stride",
    "num_frames": "num_frames",
    "default_fps": "default_fps",
    "downsample_rate": "downsample_rate",
    "max_seq_len": "max_seq_len",
    "trunc_thresh": "trunc_thresh",
    "crop_ratio": "crop_ratio",
    "force_upsampling": "force_upsampling",
    "input_dim": "input_dim",
    "num_classes": "num_classes",
    "file_ext": "file_ext",
}


def is_official_config(data: Any) -> bool:
    """A mapping with any of the release's top-level keys (``dataset_name``, ``dataset``, ``opt``, ...)
    and without the ``data``/``train`` sections of a tal experiment config."""
    return (
        isinstance(data, Mapping)
        and any(k in data for k in OFFICIAL_KEYS)
        and not any(k in data for k in ("data", "train", "metric"))
    )


def _dataset_section(cfg: Mapping[str, Any], split: Any, training: bool) -> dict[str, Any]:
    ds = cfg["dataset"]
    name = cfg.get("dataset_name", "thumos")
    if name not in RELEASE_TIOU:
        raise ConfigError(f"dataset_name: {name!r} is not one of the release's datasets ({', '.join(RELEASE_TIOU)})")
    out: dict[str, Any] = {
        "name": "actionformer-features",
        "dataset_name": name,
        "annotation_file": ds.get("json_file"),
        "feature_dir": ds.get("feat_folder"),
        "subset": list(split) if isinstance(split, (list, tuple)) else split,
        "training": training,
        "file_prefix": ds.get("file_prefix") or "",
    }
    for src, dst in _DATASET_KEYS.items():
        if src in ds and ds[src] is not None:
            out[dst] = ds[src]
    if out["annotation_file"] is None or out["feature_dir"] is None:
        raise ConfigError("dataset: json_file and feat_folder are required")
    return out


def _empty_classes(cfg: Mapping[str, Any]) -> list[int]:
    name = cfg.get("dataset_name")
    if name == "thumos":
        return [c for c in THUMOS_EMPTY_CLASSES if c < int(cfg["dataset"]["num_classes"])]
    if name == "epic":
        path = Path(str(cfg["dataset"].get("json_file")))
        if path.is_file():
            from tal.core.formats import read_annotations
            from tal.loc_actionformer.data import empty_label_ids

            return empty_label_ids(read_annotations(path), int(cfg["dataset"]["num_classes"]))
    return []


def _train_section(cfg: Mapping[str, Any], label: str) -> dict[str, Any]:
    opt, loader = cfg["opt"], cfg["loader"]
    warmup = float(opt.get("warmup_epochs", 0)) if opt.get("warmup", True) else 0.0
    kind = str(opt.get("type", "AdamW")).lower()
    if kind not in ("adamw", "sgd"):
        raise ConfigError(f"opt.type: {opt.get('type')!r} is not supported (AdamW or SGD)")
    sched = str(opt.get("schedule_type", "cosine"))
    if sched not in ("cosine", "multistep"):
        raise ConfigError(f"opt.schedule_type: {sched!r} is not supported (cosine or multistep)")
    epochs = int(opt["epochs"]) + int(warmup)
    if "early_stop_epochs" in opt:
        raise ConfigError(
            "opt.early_stop_epochs: stopping before the end of the schedule is not supported; remove it "
            "(or set opt.epochs so that epochs + warmup_epochs is the run length)"
        )
    devices = cfg.get("devices") or ["cuda:0"]
    clip = float(cfg["train_cfg"].get("clip_grad_l2norm", -1))
    out_root = str(cfg.get("output_folder") or "./ckpt/")
    return {
        "epochs": epochs,
        "batch_size": int(loader.get("batch_size", 8)),
        "eval_batch_size": 1,
        "num_workers": int(loader.get("num_workers", 4)),
        "optimizer": {
            "name": kind,
            "lr": float(opt["learning_rate"]) * len(devices),
            "weight_decay": float(opt.get("weight_decay", 0.0)),
            "momentum": float(opt.get("momentum", 0.9)),
        },
        "scheduler": {
            "name": sched,
            "warmup_epochs": warmup,
            "milestones": [int(m) for m in opt.get("schedule_steps", [])],
            "gamma": float(opt.get("schedule_gamma", 0.1)),
            "eta_min": COSINE_ETA_MIN if sched == "cosine" else 0.0,
        },
        "clip_grad_norm": clip if clip > 0 else None,
        "ema": {"enabled": True, "decay": EMA_DECAY},
        "seed": int(cfg.get("init_rand_seed", 0)),
        "best_metric": "average_mAP",
        "output_dir": str(Path(out_root) / label),
    }


def experiment_from_official(source: str | Path | Mapping[str, Any], label: str | None = None) -> dict[str, Any]:
    """The raw tal experiment dict (``model``, ``data``, ``metric``, ``train``) of a release config.

    Args:
        source: a release YAML file or its parsed mapping.
        label: run name under ``output_folder`` (default: the file's stem, or ``dataset_name``).
    """
    raw = read_yaml(source) if not isinstance(source, Mapping) else copy.deepcopy(dict(source))
    try:
        cfg = official_config_dict(raw)
    except ValueError as exc:
        raise ConfigError(f"release config: {exc}") from None
    if cfg.get("model_name") != "LocPointTransformer":
        raise ConfigError(f"model_name: {cfg.get('model_name')!r} is not 'LocPointTransformer'")
    name = str(cfg.get("dataset_name"))
    label = label or (Path(source).stem if not isinstance(source, Mapping) else name)
    model = {"name": "actionformer", **copy.deepcopy(cfg["model"])}
    model["train_cfg"] = {k: v for k, v in model["train_cfg"].items() if k != "head_empty_cls"}
    model["train_cfg"]["head_empty_cls"] = _empty_classes(cfg)
    val_split = cfg.get("val_split") or []
    data: dict[str, Any] = {"train": _dataset_section(cfg, cfg.get("train_split"), training=True)}
    if val_split:
        data["val"] = _dataset_section(cfg, val_split, training=False)
    return {
        "model": model,
        "data": data,
        "metric": {"name": "detection-map", "tiou_thresholds": list(RELEASE_TIOU[name]), "top_k": [1, 5]},
        "train": _train_section(cfg, label),
    }


def translate_release_config(data: Mapping[str, Any], path: Path | None) -> dict[str, Any]:
    """The ``config_formats`` hook of the plugin: a parsed release YAML as a tal experiment dict."""
    return experiment_from_official(data, label=path.stem if path is not None else None)
