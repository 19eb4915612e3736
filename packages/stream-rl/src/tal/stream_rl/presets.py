"""Presets ``stream-rl/<dataset>``: the release's SVTAS-RL settings on pre-extracted features.

From ``config/svtas/svtas-rl/svtas_rl_{gtea,50salads,breakfast,egtea}.py`` (Thinksky5124/SVTAS, main):

| dataset | classes | sample rate | clip (sampled frames) | window W |
|---|---|---|---|---|
| GTEA | 11 | 2 | 64 | 128 |
| 50Salads | 19 | 8 | 128 | 1024 |
| Breakfast | 48 | 8 | 128 | 1024 |
| EGTEA | 20 | 8 | 128 | 1024 |

Training as released: one clip per optimizer step (``stream-clips`` items of one clip; the release
clears the head's memory after every step, so training clips start from an empty state), 80 epochs,
AdamW (lr 5e-4, weight decay 1e-4, betas (0.9, 0.999)), backbone lr × 0.02, cosine decay to 1e-5,
checkpoint on F1@50; the head as in :class:`~tal.stream_rl.config.BRTHeadConfig`; the
reward-weighted objective.

Differences, by necessity: the release trains end to end from RGB with a Kinetics-pretrained Swin3D-B
(not shipped here); these presets read MS-TCN-layout features (``data/<dataset>/features/*.npy``,
one column per frame) through the feature-input backbone, so the head's token stride is the sample
rate (the release's feature-input BRT configs do the same). The cosine schedule runs per step instead
of per epoch. Split counts: GTEA 4, 50Salads 5, Breakfast 4 (MS-TCN's), EGTEA 3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DatasetFacts:
    """Published settings of one dataset."""

    num_classes: int
    sample_rate: int
    clip_len: int
    fps: float
    splits: tuple[int, ...]
    description: str


DATASETS: dict[str, DatasetFacts] = {
    "gtea": DatasetFacts(11, 2, 64, 15.0, (1, 2, 3, 4), "GTEA, 11 classes, clips of 64 frames sampled every 2"),
    "50salads": DatasetFacts(19, 8, 128, 30.0, (1, 2, 3, 4, 5), "50Salads, 19 classes, clips of 128 frames every 8"),
    "breakfast": DatasetFacts(48, 8, 128, 15.0, (1, 2, 3, 4), "Breakfast, 48 classes, clips of 128 frames every 8"),
    "egtea": DatasetFacts(20, 8, 128, 24.0, (1, 2, 3), "EGTEA Gaze+, 20 classes, clips of 128 frames every 8"),
}

EPOCHS = 80
LEARNING_RATE = 5e-4
WEIGHT_DECAY = 1e-4
BETAS = (0.9, 0.999)
ETA_MIN = 1e-5
BACKBONE_LR_SCALE = 0.02
FEATURE_DIM = 2048


def model_dict(dataset: str, input_dim: int = FEATURE_DIM, num_classes: int | None = None) -> dict[str, Any]:
    """The ``model`` section of a preset: ``svtas-rl`` on ``input_dim``-channel features."""
    facts = _facts(dataset)
    return {
        "name": "svtas-rl",
        "num_classes": facts.num_classes if num_classes is None else num_classes,
        "clip_len": facts.clip_len,
        "sample_rate": facts.sample_rate,
        "backbone": {"name": "stream-features", "input_dim": input_dim},
        "head": {
            "num_f_maps": 128,
            "encoder_layers": 8,
            "decoder_layers": 8,
            "num_decoders": 3,
            "num_heads": 1,
            "state_len": 512,
            "dropout": 0.5,
            "channel_masking_rate": 0.2,
        },
        "loss": {"objective": "reward_weighted", "smooth_weight": 0.15, "beta1": 4.0, "beta2": -1.0},
        "backbone_lr_scale": BACKBONE_LR_SCALE,
    }


def experiment_dict(dataset: str, split: int = 1, root: str | None = None) -> dict[str, Any]:
    """The raw experiment config of ``stream-rl/<dataset>`` for cross-validation split ``split``."""
    facts = _facts(dataset)
    if split not in facts.splits:
        raise ValueError(f"{dataset} has splits {list(facts.splits)}, not {split}")
    root = root or f"data/{dataset}"
    data = {"name": "mstcn", "root": root, "sample_rate": 1, "fps": facts.fps, "input_dim": FEATURE_DIM}
    return {
        "model": model_dict(dataset),
        "data": {
            "train": {
                "name": "stream-clips",
                "source": {**data, "split": f"train.split{split}.bundle"},
                "clip_len": facts.clip_len,
                "sample_rate": facts.sample_rate,
                "clips_per_item": 1,
            },
            "val": {**data, "split": f"test.split{split}.bundle"},
            "test": {**data, "split": f"test.split{split}.bundle"},
        },
        "metric": {"name": "segmentation"},
        "train": {
            "epochs": EPOCHS,
            "batch_size": 1,
            "optimizer": {"name": "adamw", "lr": LEARNING_RATE, "weight_decay": WEIGHT_DECAY, "betas": list(BETAS)},
            "scheduler": {"name": "cosine", "eta_min": ETA_MIN},
            "best_metric": "F1@50",
            "output_dir": f"runs/stream-rl/{dataset}_split{split}",
        },
    }


def preset_loaders() -> dict[str, tuple[Callable[..., dict[str, Any]], str, tuple[int, ...]]]:
    """``{"stream-rl/<dataset>": (loader(split=1), description, splits)}`` for the plugin."""

    def loader_for(dataset: str) -> Callable[..., dict[str, Any]]:
        def load(split: int = 1) -> dict[str, Any]:
            return experiment_dict(dataset, split)

        load.__doc__ = f"SVTAS-RL on {dataset} (MS-TCN layout under data/{dataset})"
        return load

    return {
        f"stream-rl/{name}": (loader_for(name), facts.description, facts.splits) for name, facts in DATASETS.items()
    }


def _facts(dataset: str) -> DatasetFacts:
    key = dataset.removeprefix("stream-rl/").lower()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; presets exist for {', '.join(DATASETS)}")
    return DATASETS[key]


def build_model(preset: str, input_dim: int = FEATURE_DIM, num_classes: int | None = None, **fields: Any) -> Any:
    """A randomly initialised ``svtas-rl`` model with the settings of preset ``preset``.

    ``preset`` is a dataset name (``"gtea"``, ``"50salads"``, ``"breakfast"``, ``"egtea"``, with or
    without the ``stream-rl/`` prefix); the backbone is ``stream-features`` with ``input_dim`` channels.
    Other ``svtas-rl`` config fields may be given as keywords (``head={"num_f_maps": 64}`` updates the
    head section). Example: ``build_model("gtea", input_dim=2048, num_classes=11)``.
    """
    from tal.stream_rl.config import Conv3dBackboneConfig, FeatureBackboneConfig, SVTASRLConfig
    from tal.stream_rl.modeling.meta_arch import build_svtas_rl

    data = model_dict(preset, input_dim, num_classes)
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict) and key != "backbone":
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    backbone = data["backbone"]
    if isinstance(backbone, dict):
        own: dict[str, type[FeatureBackboneConfig] | type[Conv3dBackboneConfig]] = {
            "stream-features": FeatureBackboneConfig,
            "stream-conv3d": Conv3dBackboneConfig,
        }
        if backbone.get("name") not in own:
            raise ValueError(f"build_model(): backbone {backbone.get('name')!r} is not one of {sorted(own)}")
        data["backbone"] = own[backbone["name"]].model_validate(backbone)
    return build_svtas_rl(SVTASRLConfig.model_validate(data))
