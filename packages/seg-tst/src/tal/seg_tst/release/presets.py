"""Presets with the published hyperparameters, one per dataset and stage, each with the dataset's splits.

* ``seg-tst/<dataset>-backbone`` (stage 1): DiffAct as its ``default_configs.py`` trains it (Adam, the
  dataset's lr / weight decay / epochs, batch 4 as gradient accumulation, no schedule), DiffAct's
  post-processing and temporal augmentation.
* ``seg-tst/<dataset>`` (stage 2): TST on the frozen DiffAct as ``scripts/train_diffact_tst.sh`` trains it
  (Adam with weight decay 1e-4, cosine schedule, batch 1, 60 epochs; lr 5e-4 and attention lr 5e-5 with
  ``inner_dim`` 64 for GTEA/50Salads, 5e-5 / 5e-6 / 128 for Breakfast), TST's post-processing.

Both read ``dataset/<dataset>`` (the releases' ``--dataset_root ./dataset``; change it with
``--set data.train.root=… data.val.root=… data.test.root=…``). Checkpoints are chosen on the ``val``
subset carved from the training videos, never on ``test``. The stage-2 preset expects the stage-1
run's ``best.pt`` at ``runs/seg-tst/<dataset>-backbone/split<K>/best.pt`` (or a DiffAct
``release.model`` given with ``--set model.backbone_checkpoint=…``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tal.seg_tst.config import DIFFACT_PRESETS, POSTPROCESS_PRESETS, TST_PRESETS
from tal.seg_tst.data import DATASET_RULES

#: DiffAct's default_configs.py training settings
DIFFACT_TRAIN = {
    "gtea": {"lr": 5e-4, "weight_decay": 1e-6, "epochs": 10001, "eval_every": 100},
    "50salads": {"lr": 5e-4, "weight_decay": 0.0, "epochs": 5001, "eval_every": 100},
    "breakfast": {"lr": 1e-4, "weight_decay": 0.0, "epochs": 1001, "eval_every": 20},
}
TST_EPOCHS = 60
TST_WEIGHT_DECAY = 1e-4
TST_ETA_MIN = 1e-6


def _data(dataset: str, split: int) -> dict[str, Any]:
    root = f"dataset/{dataset}"
    base = {"name": "seg-tst-mstcn", "root": root, "dataset": dataset, "split": split}
    return {
        "train": {**base, "subset": "train"},
        "val": {**base, "subset": "val"},
        "test": {**base, "subset": "test"},
    }


def backbone_preset(dataset: str, split: int = 1) -> dict[str, Any]:
    """Stage 1: DiffAct on ``dataset`` split ``split``."""
    t = DIFFACT_TRAIN[dataset]
    return {
        "model": {
            "name": "seg-backbone",
            "backbone": {"name": "diffact", **DIFFACT_PRESETS[dataset]},
            "postprocess": POSTPROCESS_PRESETS[dataset],
            "train_offset": "random",
            "eval_offsets": "all",
        },
        "data": _data(dataset, split),
        "metric": {"name": "seg-compare"},
        "train": {
            "epochs": t["epochs"],
            "batch_size": 4,
            "optimizer": {"name": "adam", "lr": t["lr"], "weight_decay": t["weight_decay"]},
            "scheduler": {"name": "constant"},
            "eval_every": t["eval_every"],
            "checkpoint_every": t["eval_every"],
            "best_metric": "labels/F1@50",
            "output_dir": f"runs/seg-tst/{dataset}-backbone/split{split}",
        },
    }


def tst_preset(dataset: str, split: int = 1) -> dict[str, Any]:
    """Stage 2: TST on the frozen DiffAct of ``dataset`` split ``split``."""
    p = TST_PRESETS[dataset]
    return {
        "model": {
            "name": "backbone-tst",
            "backbone": {"name": "diffact", **DIFFACT_PRESETS[dataset]},
            "refiner": {
                "name": "tst",
                "n_classes": p["n_classes"],
                "feat_dim": p["feat_dim"],
                "inner_dim": p["inner_dim"],
            },
            "freeze_backbone": True,
            "backbone_checkpoint": f"runs/seg-tst/{dataset}-backbone/split{split}/best.pt",
            "lr_transformer": p["lr_transformer"],
            "infer_mode": "hardmax",
            "postprocess": POSTPROCESS_PRESETS[dataset],
        },
        "data": _data(dataset, split),
        "metric": {"name": "seg-compare"},
        "train": {
            "epochs": TST_EPOCHS,
            "batch_size": 1,
            "optimizer": {"name": "adam", "lr": p["lr"], "weight_decay": TST_WEIGHT_DECAY},
            # torch's CosineAnnealingLR(eta_min=1e-6): every group, the attention blocks' too, ends at 1e-6
            "scheduler": {"name": "cosine", "eta_min": TST_ETA_MIN, "eta_min_absolute": True},
            "best_metric": "refined/F1@50",
            "output_dir": f"runs/seg-tst/{dataset}/split{split}",
        },
    }


def preset_loaders() -> dict[str, tuple[Callable[..., dict[str, Any]], str, tuple[int, ...]]]:
    """``{name: (loader(split=K), description, splits)}``."""
    out: dict[str, tuple[Callable[..., dict[str, Any]], str, tuple[int, ...]]] = {}
    for dataset, rules in DATASET_RULES.items():
        splits = tuple(rules["splits"])

        def stage1(split: int = 1, _d: str = dataset) -> dict[str, Any]:
            return backbone_preset(_d, split)

        def stage2(split: int = 1, _d: str = dataset) -> dict[str, Any]:
            return tst_preset(_d, split)

        out[f"seg-tst/{dataset}-backbone"] = (stage1, f"DiffAct on {dataset} (stage 1, the release's settings)", splits)
        out[f"seg-tst/{dataset}"] = (
            stage2,
            f"TST on the frozen DiffAct, {dataset} (stage 2, the release's settings)",
            splits,
        )
    return out
