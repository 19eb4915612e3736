"""Translating the release's config files into tal experiment configs.

A release config (``dataset_name``, ``dataset``, ``model``, ``opt``, ``loader``, ``train_cfg``,
``test_cfg``, ... merged over the release's defaults, :data:`RELEASE_DEFAULTS`) becomes the raw dict
of an experiment YAML:

- ``model``: :class:`~tal.loc_actionformer.config.ActionFormerConfig` (``name: actionformer``) with
  ``head_empty_cls`` as the release's ``train.py`` sets it from the training set: none, except on
  EPIC, whose classes without annotations are read from the annotation file when the model is
  built (``train_cfg.head_empty_cls_from``), not now;
- ``data.train`` / ``data.val``: ``actionformer-features`` on ``train_split`` / ``val_split``;
- ``metric``: ``detection-map`` at the release's tIoU thresholds, ``np.linspace`` as the release's
  datasets build them (THUMOS14 0.3:0.7, ActivityNet 0.5:0.95, EPIC and Ego4D 0.1:0.5; Recall@1x/5x);
- ``train``: AdamW (or SGD) with the release's learning rate (x the number of ``devices``) and
  weight decay, gradient clipping (``clip_grad_l2norm``), model EMA (decay 0.999), batch size and
  workers of ``loader`` (the last incomplete training batch dropped), seed ``init_rand_seed``, best
  checkpoint by ``average_mAP``, output ``<output_folder>/<config name>``, and the release's
  schedule, stepped every iteration (its ``make_scheduler``):

  - ``warmup: true``: ``epochs + warmup_epochs`` epochs; a ramp ``lr * t / (W - 1)`` from 0 over
    the ``W`` warmup steps (the base rate at the last one); then cosine to 1e-8, or multistep with
    ``schedule_steps`` (epochs) counted from the end of the warmup;
  - ``warmup: false``: ``epochs`` epochs of torch's plain ``CosineAnnealingLR`` (to 0) or
    ``MultiStepLR`` with ``schedule_steps`` and ``schedule_gamma`` (the release's code for this last
    case names an undefined ``schedule_config`` and stops; this is what it means).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tal.core.config import read_yaml
from tal.core.errors import ConfigError
from tal.loc_actionformer.config import (
    DEFAULT_REGRESSION_RANGE,
    ActionFormerConfig,
    ActionFormerTestCfg,
    ActionFormerTrainCfg,
)

#: The release's default configuration (its ``libs/core/config.py``) that its YAML files are merged over.
RELEASE_DEFAULTS: dict[str, Any] = {
    "init_rand_seed": 1234567891,
    "dataset_name": "epic",
    "devices": ["cuda:0"],
    "train_split": ["training"],
    "val_split": ["validation"],
    "model_name": "LocPointTransformer",
    "dataset": {
        "feat_stride": 16,
        "num_frames": 32,
        "default_fps": None,
        "input_dim": 2304,
        "num_classes": 97,
        "downsample_rate": 1,
        "max_seq_len": 2304,
        "trunc_thresh": 0.5,
        "crop_ratio": None,
        "force_upsampling": False,
    },
    "loader": {"batch_size": 8, "num_workers": 4},
    "model": {
        "backbone_type": "convTransformer",
        "fpn_type": "identity",
        "backbone_arch": [2, 2, 5],
        "scale_factor": 2,
        "regression_range": [list(r) for r in DEFAULT_REGRESSION_RANGE],
        "n_head": 4,
        "n_mha_win_size": -1,
        "embd_kernel_size": 3,
        "embd_dim": 512,
        "embd_with_ln": True,
        "fpn_dim": 512,
        "fpn_with_ln": True,
        "fpn_start_level": 0,
        "head_dim": 512,
        "head_kernel_size": 3,
        "head_num_layers": 3,
        "head_with_ln": True,
        "max_buffer_len_factor": 6.0,
        "use_abs_pe": False,
        "use_rel_pe": False,
    },
    "train_cfg": {
        "center_sample": "radius",
        "center_sample_radius": 1.5,
        "loss_weight": 1.0,
        "cls_prior_prob": 0.01,
        "init_loss_norm": 2000,
        "clip_grad_l2norm": -1,
        "head_empty_cls": [],
        "dropout": 0.0,
        "droppath": 0.1,
        "label_smoothing": 0.0,
    },
    "test_cfg": {
        "pre_nms_thresh": 0.001,
        "pre_nms_topk": 5000,
        "iou_threshold": 0.1,
        "min_score": 0.01,
        "max_seg_num": 1000,
        "nms_method": "soft",
        "nms_sigma": 0.5,
        "duration_thresh": 0.05,
        "multiclass_nms": True,
        "ext_score_file": None,
        "voting_thresh": 0.75,
    },
    "opt": {
        "type": "AdamW",
        "momentum": 0.9,
        "weight_decay": 0.0,
        "learning_rate": 1e-3,
        "epochs": 30,
        "warmup": True,
        "warmup_epochs": 5,
        "schedule_type": "cosine",
        "schedule_steps": [],
        "schedule_gamma": 0.1,
    },
}

RELEASE_TOP_KEYS = ("dataset_name", "dataset", "opt", "train_split", "val_split", "loader")
#: the keys a release config may set, by section ("" = top level): the release's defaults, the keys its
#: code reads besides them (the dataset's files, output_folder, early_stop_epochs), and for the model
#: sections every field of our configs (the tal-only ones included, e.g. model.attn_impl)
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "": frozenset(RELEASE_DEFAULTS) | {"output_folder"},
    "dataset": frozenset(RELEASE_DEFAULTS["dataset"]) | {"json_file", "feat_folder", "file_prefix", "file_ext"},
    "loader": frozenset(RELEASE_DEFAULTS["loader"]),
    "opt": frozenset(RELEASE_DEFAULTS["opt"]) | {"early_stop_epochs"},
    "model": frozenset(ActionFormerConfig.model_fields) - {"name"},
    "train_cfg": frozenset(ActionFormerTrainCfg.model_fields),
    "test_cfg": frozenset(ActionFormerTestCfg.model_fields),
}
#: ``(start, stop, count)`` of the ``np.linspace`` tIoU thresholds of each of the release's datasets
RELEASE_TIOU: dict[str, tuple[float, float, int]] = {
    "thumos": (0.3, 0.7, 5),
    "anet": (0.5, 0.95, 10),
    "epic": (0.1, 0.5, 5),
    "ego4d": (0.1, 0.5, 5),
}
#: the final learning rate of the release's warmup + cosine schedule (torch's plain cosine goes to 0)
COSINE_ETA_MIN = 1e-8
EMA_DECAY = 0.999
_DATASET_KEYS = (
    "feat_stride",
    "num_frames",
    "default_fps",
    "downsample_rate",
    "max_seq_len",
    "trunc_thresh",
    "crop_ratio",
    "force_upsampling",
    "input_dim",
    "num_classes",
    "file_ext",
)


def _merge_defaults(defaults: Mapping[str, Any], cfg: dict[str, Any], path: str = "") -> None:
    """Fill ``cfg`` in place from ``defaults``: keys the file sets win, missing keys take the default."""
    for key, default in defaults.items():
        if key not in cfg:
            cfg[key] = copy.deepcopy(default)
        elif isinstance(default, Mapping):
            if not isinstance(cfg[key], Mapping):
                raise ConfigError(f"release config: {path}{key} must be a mapping, got {cfg[key]!r}")
            _merge_defaults(default, cfg[key], f"{path}{key}.")


def check_keys(cfg: Mapping[str, Any]) -> None:
    """Refuse a key that no section of a release config knows (:data:`KNOWN_KEYS`), naming the closest one."""
    for section, known in KNOWN_KEYS.items():
        values = cfg if not section else cfg.get(section)
        if not isinstance(values, Mapping):
            continue  # absent (the defaults fill it) or not a mapping (the merge says so)
        for key in values:
            if key in known:
                continue
            where = f"{section}.{key}" if section else str(key)
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"release config: {where} is not a key of the release's {section or 'top-level'} section; {hint}"
                f"(known: {', '.join(sorted(known))})"
            )


def release_config_dict(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A release config (YAML path or already-parsed mapping) merged over :data:`RELEASE_DEFAULTS`.

    Unknown keys are errors (:func:`check_keys`). As in the release, ``model.input_dim``,
    ``model.num_classes`` and ``model.max_seq_len`` are then copied from ``dataset`` and
    ``model.train_cfg`` / ``model.test_cfg`` from the top-level sections.
    """
    cfg = copy.deepcopy(dict(source)) if isinstance(source, Mapping) else read_yaml(source)
    check_keys(cfg)
    _merge_defaults(RELEASE_DEFAULTS, cfg)
    model = cfg["model"]
    for key in ("input_dim", "num_classes", "max_seq_len"):
        model[key] = cfg["dataset"][key]
    model["train_cfg"] = cfg["train_cfg"]
    model["test_cfg"] = cfg["test_cfg"]
    return cfg


def model_config_from_release(source: str | Path | Mapping[str, Any], **overrides: Any) -> ActionFormerConfig:
    """The :class:`ActionFormerConfig` of a release YAML (``configs/*.yaml``, its keys as they are).

    ``overrides`` set fields of ours that the release lacks (e.g. ``attn_impl``).
    """
    cfg = release_config_dict(source)
    if cfg.get("model_name") != "LocPointTransformer":
        raise ConfigError(f"release config: model_name {cfg.get('model_name')!r} is not 'LocPointTransformer'")
    return ActionFormerConfig(**copy.deepcopy(cfg["model"]), **overrides)


def is_release_config(data: Any) -> bool:
    """A mapping with any of the release's top-level keys (``dataset_name``, ``dataset``, ``opt``, ...)
    and without the ``data``/``train`` sections of a tal experiment config."""
    return (
        isinstance(data, Mapping)
        and any(k in data for k in RELEASE_TOP_KEYS)
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
    for key in _DATASET_KEYS:
        if key in ds and ds[key] is not None:
            out[key] = ds[key]
    if out["annotation_file"] is None or out["feature_dir"] is None:
        raise ConfigError("dataset: json_file and feat_folder are required")
    return out


def tiou_thresholds(dataset_name: str) -> list[float]:
    """The release's tIoU thresholds of a dataset, built as it builds them (``np.linspace``)."""
    start, stop, count = RELEASE_TIOU[dataset_name]
    return [float(t) for t in np.linspace(start, stop, count)]


def _scheduler_section(opt: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """``(epochs, scheduler)`` of the release's ``make_scheduler`` (see the module docs)."""
    sched = str(opt.get("schedule_type", "cosine"))
    if sched not in ("cosine", "multistep"):
        raise ConfigError(f"opt.schedule_type: {sched!r} is not supported (cosine or multistep)")
    milestones = [int(m) for m in opt.get("schedule_steps", [])]
    gamma = float(opt.get("schedule_gamma", 0.1))
    if opt.get("warmup", True):
        warmup = int(opt.get("warmup_epochs", 0))
        return int(opt["epochs"]) + warmup, {
            "name": sched,
            "warmup_epochs": float(warmup),
            "warmup_inclusive": True,
            "milestones": milestones,
            "milestones_after_warmup": True,
            "gamma": gamma,
            "eta_min": COSINE_ETA_MIN if sched == "cosine" else 0.0,
        }
    return int(opt["epochs"]), {
        "name": sched,
        "warmup_epochs": 0.0,
        "milestones": milestones,
        "gamma": gamma,
        "eta_min": 0.0,
    }


def _train_section(cfg: Mapping[str, Any], label: str) -> dict[str, Any]:
    opt, loader = cfg["opt"], cfg["loader"]
    kind = str(opt.get("type", "AdamW")).lower()
    if kind not in ("adamw", "sgd"):
        raise ConfigError(f"opt.type: {opt.get('type')!r} is not supported (AdamW or SGD)")
    if "early_stop_epochs" in opt:
        raise ConfigError(
            "opt.early_stop_epochs: stopping before the end of the schedule is not supported; remove it "
            "(or set opt.epochs so that epochs + warmup_epochs is the run length)"
        )
    epochs, scheduler = _scheduler_section(opt)
    devices = cfg.get("devices") or ["cuda:0"]
    clip = float(cfg["train_cfg"].get("clip_grad_l2norm", -1))
    out_root = str(cfg.get("output_folder") or "./ckpt/")
    return {
        "epochs": epochs,
        "batch_size": int(loader.get("batch_size", 8)),
        "drop_last": True,
        "eval_batch_size": 1,
        "num_workers": int(loader.get("num_workers", 4)),
        "optimizer": {
            "name": kind,
            "lr": float(opt["learning_rate"]) * len(devices),
            "weight_decay": float(opt.get("weight_decay", 0.0)),
            "momentum": float(opt.get("momentum", 0.9)),
        },
        "scheduler": scheduler,
        "clip_grad_norm": clip if clip > 0 else None,
        "ema": {"enabled": True, "decay": EMA_DECAY},
        "seed": int(cfg.get("init_rand_seed", 0)),
        "best_metric": "average_mAP",
        "output_dir": str(Path(out_root) / label),
    }


def experiment_from_release(source: str | Path | Mapping[str, Any], label: str | None = None) -> dict[str, Any]:
    """The raw tal experiment dict (``model``, ``data``, ``metric``, ``train``) of a release config.

    Args:
        source: a release YAML file or its parsed mapping.
        label: run name under ``output_folder`` (default: the file's stem, or ``dataset_name``).
    """
    cfg = release_config_dict(source)
    if cfg.get("model_name") != "LocPointTransformer":
        raise ConfigError(f"model_name: {cfg.get('model_name')!r} is not 'LocPointTransformer'")
    name = str(cfg.get("dataset_name"))
    label = label or (Path(source).stem if not isinstance(source, Mapping) else name)
    model = {"name": "actionformer", **copy.deepcopy(cfg["model"])}
    # the release's train.py replaces head_empty_cls with the training set's empty classes: none but EPIC's
    model["train_cfg"]["head_empty_cls"] = []
    if name == "epic":
        model["train_cfg"]["head_empty_cls_from"] = str(cfg["dataset"].get("json_file") or "")
    val_split = cfg.get("val_split") or []
    data: dict[str, Any] = {"train": _dataset_section(cfg, cfg.get("train_split"), training=True)}
    if val_split:
        data["val"] = _dataset_section(cfg, val_split, training=False)
    return {
        "model": model,
        "data": data,
        "metric": {"name": "detection-map", "tiou_thresholds": tiou_thresholds(name), "top_k": [1, 5]},
        "train": _train_section(cfg, label),
    }


def translate_release_config(data: Mapping[str, Any], path: Path | None) -> dict[str, Any]:
    """The config format's ``translate``: a parsed release YAML as a tal experiment dict."""
    return experiment_from_release(data, label=path.stem if path is not None else None)
