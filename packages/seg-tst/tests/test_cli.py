"""`tal train` (both stages), `tal eval` (per split, backbone vs refined) and `tal infer` end to end, presets,
and the release checkpoint layouts through core's loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from synth_data import write_dataset

from tal.core.cli.main import main
from tal.core.config import load_experiment
from tal.core.engine.checkpoint import load_model_weights
from tal.core.errors import DataFormatError
from tal.core.formats import read_prediction
from tal.core.registry import get_registry
from tal.seg_tst import BackboneWithTST, DiffAct, DiffActAdapter, TSTRefiner

TINY_BACKBONE = {"name": "mstcn", "num_classes": 4, "input_dim": 8, "num_stages": 2, "num_layers": 3, "num_f_maps": 8}
TINY_REFINER = {"name": "tst", "n_classes": 4, "feat_dim": 8, "inner_dim": 8, "sd_dim": 16, "n_layers": 3}


def _data(root: Path) -> dict:
    base = {"name": "seg-tst-mstcn", "root": str(root), "input_dim": 8}
    return {"train": {**base, "subset": "train"}, "val": {**base, "subset": "val"}, "test": {**base, "subset": "test"}}


def _train_section(out: Path, epochs: int, best: str) -> dict:
    return {
        "epochs": epochs,
        "batch_size": 1,
        "optimizer": {"name": "adam", "lr": 0.005},
        "best_metric": best,
        "device": "cpu",
        "progress": False,
        "output_dir": str(out),
    }


def test_two_stages_through_tal_train_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "data")
    stage1 = {
        "model": {"name": "seg-backbone", "backbone": TINY_BACKBONE, "eval_offsets": "first"},
        "data": _data(root),
        "metric": {"name": "seg-compare"},
        "train": _train_section(tmp_path / "s1", 3, "labels/F1@50"),
    }
    (tmp_path / "s1.yaml").write_text(yaml.safe_dump(stage1))
    assert main(["train", str(tmp_path / "s1.yaml")]) == 0
    assert (tmp_path / "s1" / "best.pt").is_file()
    stage2 = {
        "model": {
            "name": "backbone-tst",
            "backbone": TINY_BACKBONE,
            "refiner": TINY_REFINER,
            "backbone_checkpoint": str(tmp_path / "s1" / "best.pt"),
            "lr_transformer": 0.001,
        },
        "data": _data(root),
        "metric": {"name": "seg-compare"},
        "train": _train_section(tmp_path / "s2", 2, "refined/F1@50"),
    }
    (tmp_path / "s2.yaml").write_text(yaml.safe_dump(stage2))
    assert main(["train", str(tmp_path / "s2.yaml")]) == 0
    capsys.readouterr()
    assert (
        main(["eval", str(tmp_path / "s2.yaml"), "--ckpt", str(tmp_path / "s2" / "best.pt"), "--subset", "test"]) == 0
    )
    out = capsys.readouterr().out
    for key in ("backbone/F1@50", "refined/F1@50", "refined/Edit", "backbone/Acc"):
        assert key in out
    # the frozen backbone in the stage-2 checkpoint is the stage-1 one
    s1 = torch.load(tmp_path / "s1" / "best.pt", weights_only=True)["model"]
    s2 = torch.load(tmp_path / "s2" / "best.pt", weights_only=True)["model"]
    for k, v in s1.items():
        torch.testing.assert_close(s2[k], v)


def test_stage2_refuses_an_untrained_backbone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "data")
    cfg = {
        "model": {
            "name": "backbone-tst",
            "backbone": TINY_BACKBONE,
            "refiner": TINY_REFINER,
            "backbone_checkpoint": str(tmp_path / "missing.pt"),
        },
        "data": _data(root),
        "metric": {"name": "seg-compare"},
        "train": _train_section(tmp_path / "out", 1, "refined/F1@50"),
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "c.yaml")]) == 2
    assert "backbone_checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "splits"), [("gtea", 4), ("50salads", 5), ("breakfast", 4)])
def test_presets_carry_the_published_settings(name: str, splits: int) -> None:
    reg = get_registry()
    preset = reg.get("presets", f"seg-tst/{name}").factory
    assert list(preset.splits) == list(range(1, splits + 1))
    cfg = load_experiment(f"seg-tst/{name}", reg, split=splits)
    inner, lr, lr_tf = {"breakfast": (128, 5e-5, 5e-6)}.get(name, (64, 5e-4, 5e-5))
    assert cfg.model.refiner.inner_dim == inner and cfg.model.refiner.feat_dim == (768 if name == "breakfast" else 192)
    assert cfg.train.optimizer.name == "adam" and cfg.train.optimizer.lr == lr and cfg.model.lr_transformer == lr_tf
    assert cfg.train.epochs == 60 and cfg.train.batch_size == 1 and cfg.train.scheduler.name == "cosine"
    assert cfg.train.scheduler.eta_min == 1e-6 and cfg.train.scheduler.eta_min_absolute  # CosineAnnealingLR(1e-6)
    assert cfg.train.best_metric == "refined/F1@50"
    assert cfg.data.val.subset == "val" and cfg.data.test.subset == "test" and cfg.data.test.split == splits
    assert f"split{splits}" in cfg.model.backbone_checkpoint
    stage1 = load_experiment(f"seg-tst/{name}-backbone", reg, split=1)
    assert stage1.model.backbone.encoder_params.num_layers == (12 if name == "breakfast" else 10)
    assert stage1.train.epochs == {"gtea": 10001, "50salads": 5001, "breakfast": 1001}[name]
    assert stage1.model.postprocess.type == {"gtea": "purge", "50salads": "median", "breakfast": "median"}[name]


def _gtea_release_checkpoint(path: Path) -> BackboneWithTST:
    model = BackboneWithTST(DiffActAdapter(DiffAct.from_preset("gtea", 11)), TSTRefiner(11, 192, 64))
    torch.save(model.state_dict(), path)  # the release's layout: a bare BackboneWithTST state dict
    return model


def _gtea_like(root: Path, t_len: int = 18) -> Path:
    rng = np.random.default_rng(0)
    names = [f"a{k}" for k in range(10)] + ["background"]
    (root / "features").mkdir(parents=True)
    (root / "groundTruth").mkdir()
    (root / "splits").mkdir()
    (root / "mapping.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(names)))
    for v in ("S1_Tea_C1", "S2_Tea_C1"):
        np.save(root / "features" / f"{v}.npy", rng.normal(size=(2048, t_len)).astype(np.float32))
        labels = ["background"] * 5 + ["a3"] * (t_len - 5)
        (root / "groundTruth" / f"{v}.txt").write_text("".join(f"{n}\n" for n in labels))
    (root / "splits" / "train.split1.bundle").write_text("S1_Tea_C1.txt\n")
    (root / "splits" / "test.split1.bundle").write_text("S2_Tea_C1.txt\n")
    return root


def test_eval_and_infer_a_release_checkpoint_with_the_preset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _gtea_like(tmp_path / "gtea")
    ckpt = tmp_path / "split_1_best.pth"
    _gtea_release_checkpoint(ckpt)
    sets = [f"--set=data.{s}.root={root}" for s in ("train", "val", "test")]
    assert (
        main(
            [
                "eval",
                "seg-tst/gtea",
                "--split",
                "1",
                "--ckpt",
                str(tmp_path / "split_{split}_best.pth"),
                "--subset",
                "test",
                *sets,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "refined/F1@50" in out and "backbone/Edit" in out
    feat = root / "features" / "S2_Tea_C1.npy"
    args = [
        "infer",
        "--config",
        "seg-tst/gtea",
        "--split",
        "1",
        "--ckpt",
        str(ckpt),
        "--feat",
        str(feat),
        "--out",
        str(tmp_path / "pred.txt"),
        "--backbone-out",
        str(tmp_path / "bk.txt"),
        "--json",
        str(tmp_path / "res.json"),
        "--save-fig",
        str(tmp_path / "bars.png"),
        "--gt",
        str(root / "groundTruth" / "S2_Tea_C1.txt"),
        *sets,
    ]
    assert main(args) == 0
    text = (tmp_path / "pred.txt").read_text()
    assert text.startswith("### Frame level recognition: ###\n")
    labels = read_prediction(tmp_path / "pred.txt", root / "mapping.txt")
    assert len(labels) == 18 and (tmp_path / "bk.txt").is_file()
    res = json.loads((tmp_path / "res.json").read_text())
    assert set(res["scores"]) == {"refined", "backbone"} and (tmp_path / "bars.png").stat().st_size > 0


def test_release_checkpoint_mismatch_is_one_clear_message(tmp_path: Path) -> None:
    model = _gtea_release_checkpoint(tmp_path / "ok.pth")
    sd = model.state_dict()
    sd["refiner.class_head.weight"] = torch.zeros(20, 512)
    torch.save(sd, tmp_path / "bad.pth")
    fresh = BackboneWithTST(DiffActAdapter(DiffAct.from_preset("gtea", 11)), TSTRefiner(11, 192, 64))
    with pytest.raises(DataFormatError, match=r"bad\.pth.*tst-release.*refiner\.class_head\.weight"):
        load_model_weights(fresh, tmp_path / "bad.pth", get_registry())
    assert load_model_weights(fresh, tmp_path / "ok.pth", get_registry()) == "TST release state dict"
    assert fresh.backbone_ready
    # a DiffAct release.model loads into the stage-1 model and as a stage-2 backbone checkpoint
    torch.save(model.adapter.backbone.state_dict(), tmp_path / "release.model")
    cfg = load_experiment("seg-tst/gtea-backbone", get_registry(), split=1)
    stage1 = get_registry().build("models", cfg.model)
    assert load_model_weights(stage1, tmp_path / "release.model", get_registry()) == "backbone release state dict"
    torch.testing.assert_close(
        stage1.adapter.backbone.encoder.conv_in.weight, model.adapter.backbone.encoder.conv_in.weight
    )
