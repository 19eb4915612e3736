"""The plugin registers healthy components; core's conformance suites pass on them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from synth_data import write_dataset

from tal.core.registry import get_registry
from tal.core.testing import DatasetConformance, MetricConformance, ModelConformance

DATA = write_dataset(Path(tempfile.mkdtemp(prefix="seg_tst_conformance_")))
TINY_BACKBONE = {"name": "mstcn", "num_classes": 4, "input_dim": 8, "num_stages": 2, "num_layers": 3, "num_f_maps": 8}


def _batch() -> dict[str, Any]:
    ds = get_registry().build("datasets", TestDataset().make_config())
    return ds.collate([ds[0], ds[1]])


def test_everything_is_registered() -> None:
    reg = get_registry()
    report = next(p for p in reg.plugins if p.name == "seg-tst")
    assert report.status == "ok", report.error
    assert {"diffact", "mstcn", "mstcn++"} <= set(reg.names("backbones"))
    assert "tst" in reg.names("refiners")
    assert {"seg-backbone", "backbone-tst"} <= set(reg.names("models"))
    assert {"tst-release", "seg-backbone-release"} <= set(reg.names("checkpoint_formats"))
    assert {"backbone-tst", "seg-backbone"} <= set(reg.names("inferencers"))
    assert "seg-tst" in reg.names("demos")


class TestDataset(DatasetConformance):
    name = "seg-tst-mstcn"
    overrides = {"root": str(DATA), "input_dim": 8}


class TestMetric(MetricConformance):
    name = "seg-compare"

    def build(self) -> Any:
        metric = super().build()
        metric.set_class_names(["c0", "c1", "c2", "background"])  # the Trainer passes the dataset's names
        return metric

    def samples(self) -> tuple[list[Any], list[Any], list[str]]:
        gt = [torch.tensor([0, 0, 1, 1, 2]), torch.tensor([3, 3, 3, 0]), torch.tensor([1, 1])]
        preds = [
            {"refined": torch.tensor([0, 0, 1, 2, 2]), "backbone": torch.tensor([0, 1, 1, 1, 2])},
            {"refined": torch.tensor([3, 3, 3, 0]), "backbone": torch.tensor([3, 0, 3, 0])},
            {"refined": torch.tensor([1, 1]), "backbone": torch.tensor([0, 1])},
        ]
        return preds, gt, ["a", "b", "c"]


def test_compare_metric_scores_each_prediction_like_core() -> None:
    from tal.core.metrics.segmentation import evaluate_segmentation

    preds, gt, ids = TestMetric().samples()
    m = TestMetric().build()
    m.update(preds, gt, ids)
    out = m.compute()
    for key in ("refined", "backbone"):
        ref = evaluate_segmentation([p[key] for p in preds], gt, background_ids=[3])  # "background" is id 3
        assert out[key]["Edit"] == ref.edit and out[key]["F1@50"] == ref.f1[2] and out[key]["Acc"] == ref.acc
    assert set(out["refined"]) == {"F1@10", "F1@25", "F1@50", "Edit", "Acc"}


class TestStage1Model(ModelConformance):
    name = "seg-backbone"
    overrides = {"backbone": TINY_BACKBONE, "eval_offsets": "first"}

    def batch(self) -> dict[str, Any]:
        return _batch()


class TestStage2Model(ModelConformance):
    name = "backbone-tst"
    overrides = {
        "backbone": TINY_BACKBONE,
        "refiner": {"name": "tst", "n_classes": 4, "feat_dim": 8, "inner_dim": 8, "sd_dim": 16, "n_layers": 3},
    }

    def build(self) -> Any:
        model = super().build()
        model.backbone_ready = True  # a trained backbone would come from model.backbone_checkpoint
        return model

    def batch(self) -> dict[str, Any]:
        return _batch()
