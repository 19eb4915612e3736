"""``tal train`` and ``tal eval`` end to end on a tiny synthetic dataset registered here."""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path
from typing import Literal

import pytest
import yaml
from test_engine_support import make_registry

from tal.core import ComponentConfig
from tal.core.cli import train_cmd
from tal.core.config import load_experiment
from tal.core.engine import load_checkpoint
from tal.core.registry import Registry

CONFIG = {
    "model": {"name": "frame-mlp", "input_dim": 8, "num_classes": 3, "hidden_dim": 16},
    "data": {
        "train": {"name": "toy-seg", "num_videos": 6, "seed": 0},
        "val": {"name": "toy-seg", "num_videos": 3, "seed": 1},
    },
    "metric": {"name": "frame-acc"},
    "train": {
        "epochs": 3,
        "batch_size": 2,
        "optimizer": {"lr": 0.05},
        "ema": {"enabled": True, "decay": 0.7},
        "progress": False,
        "best_metric": "acc",
        "device": "cpu",
    },
}


def parse(command: train_cmd.Command, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tal")
    command.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture
def registry() -> Registry:
    return make_registry()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def test_register_adds_train_and_eval() -> None:
    reg = Registry()
    train_cmd.register(reg)
    assert reg.names("commands") == ["eval", "train"]
    assert reg.get("commands", "train").factory is train_cmd.TRAIN


def test_train_then_eval(tmp_path: Path, config_file: Path, registry: Registry, capsys, caplog) -> None:
    caplog.set_level(logging.INFO, logger="tal")
    out = tmp_path / "run"
    args = parse(train_cmd.TRAIN, [str(config_file), "--output-dir", str(out), "--set", "train.epochs=2"])
    assert train_cmd.run_train(args, registry) == 0
    printed = capsys.readouterr().out
    assert "final metrics" in printed and "acc" in printed
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "config.yaml", "last.pt", "metrics.csv"]
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # --set train.epochs=2 took effect

    # the written config is the resolved one and loads back to the same experiment
    resolved = load_experiment(out / "config.yaml", registry)
    assert resolved.train.epochs == 2 and resolved.train.output_dir == str(out)
    assert resolved.model == load_experiment(CONFIG, registry).model

    last = load_checkpoint(out / "last.pt")
    final_acc = last["metrics"]["acc"]
    args = parse(train_cmd.EVAL, [str(config_file), "--ckpt", str(out / "last.pt"), "--json"])
    assert train_cmd.run_eval(args, registry) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["acc"] == final_acc  # eval uses the EMA weights, as training's evaluation did
    assert result["total"] == 3 * 12
    assert "(ema weights)" in caplog.text


def test_resume_auto_continues_a_run(tmp_path: Path, config_file: Path, registry: Registry) -> None:
    out = tmp_path / "run"
    base = [str(config_file), "--output-dir", str(out), "--resume", "auto"]  # nothing to resume yet: fresh start
    assert train_cmd.run_train(parse(train_cmd.TRAIN, [*base, "--set", "train.epochs=1"]), registry) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert train_cmd.run_train(parse(train_cmd.TRAIN, [*base, "--set", "train.epochs=2"]), registry) == 0
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 6
    with (out / "metrics.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]


def test_eval_table_on_test_split(tmp_path: Path, registry: Registry, capsys) -> None:
    cfg = dict(CONFIG, data={**CONFIG["data"], "test": {"name": "toy-seg", "num_videos": 2, "seed": 5}})
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert train_cmd.run_train(parse(train_cmd.TRAIN, [str(path), "--output-dir", str(out)]), registry) == 0
    capsys.readouterr()
    args = parse(train_cmd.EVAL, [str(path), "--ckpt", str(out / "best.pt"), "--split", "test"])
    assert train_cmd.run_eval(args, registry) == 0
    table = capsys.readouterr().out
    assert "test metrics" in table and "24.0000" in table  # total frames of 2 test videos


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "train.epochs=0"], "train.epochs"),
        (["--set", "model.hidden=3"], "model.hidden"),
        (["--set", "data.train.name=nope"], "data.train"),
        (["--set", "train.device=tpu"], "unknown device"),
    ],
)
def test_train_config_errors_exit_2(tmp_path, config_file, registry, capsys, argv, message) -> None:
    args = parse(train_cmd.TRAIN, [str(config_file), "--output-dir", str(tmp_path / "x"), *argv])
    assert train_cmd.run_train(args, registry) == 2
    err = capsys.readouterr().err
    assert err.startswith("tal train: error:") and message in err
    assert "Traceback" not in err


def test_missing_config_file_exits_2(tmp_path, registry, capsys) -> None:
    assert train_cmd.run_train(parse(train_cmd.TRAIN, [str(tmp_path / "none.yaml")]), registry) == 2
    assert "config file not found" in capsys.readouterr().err


def test_eval_errors_exit_2(tmp_path, config_file, registry, capsys) -> None:
    args = parse(train_cmd.EVAL, [str(config_file), "--ckpt", str(tmp_path / "missing.pt")])
    assert train_cmd.run_eval(args, registry) == 2
    assert "checkpoint file not found" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    args = parse(train_cmd.EVAL, [str(config_file), "--ckpt", str(tmp_path / "bad.pt"), "--split", "test"])
    assert train_cmd.run_eval(args, registry) == 2
    assert "data.test" in capsys.readouterr().err
    args = parse(train_cmd.EVAL, [str(config_file), "--ckpt", str(tmp_path / "bad.pt")])
    assert train_cmd.run_eval(args, registry) == 2
    assert "bad.pt" in capsys.readouterr().err


# -- run folders are never overwritten silently ---------------------------------------------------
def test_a_second_run_goes_to_a_numbered_folder(tmp_path, config_file, registry, caplog) -> None:
    out = tmp_path / "run"
    argv = [str(config_file), "--output-dir", str(out), "--set", "train.epochs=1"]
    assert train_cmd.run_train(parse(train_cmd.TRAIN, argv), registry) == 0
    first = (out / "last.pt").read_bytes()
    assert train_cmd.run_train(parse(train_cmd.TRAIN, argv), registry) == 0
    assert (out / "last.pt").read_bytes() == first  # untouched
    assert (tmp_path / "run-2" / "last.pt").is_file() and (tmp_path / "run-2" / "config.yaml").is_file()
    assert load_experiment(tmp_path / "run-2" / "config.yaml", registry).train.output_dir == str(tmp_path / "run-2")
    assert "already holds a run; writing this one to" in caplog.text
    assert train_cmd.run_train(parse(train_cmd.TRAIN, argv), registry) == 0
    assert (tmp_path / "run-3" / "last.pt").is_file()


def test_overwrite_starts_over_in_the_same_folder(tmp_path, config_file, registry) -> None:
    out = tmp_path / "run"
    argv = [str(config_file), "--output-dir", str(out)]
    assert train_cmd.run_train(parse(train_cmd.TRAIN, [*argv, "--set", "train.epochs=2"]), registry) == 0
    assert train_cmd.run_train(parse(train_cmd.TRAIN, [*argv, "--set", "train.epochs=1", "--overwrite"]), registry) == 0
    with (out / "metrics.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]  # the old rows are gone, not appended to
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not (tmp_path / "run-2").exists()


def test_resume_auto_says_what_it_resumed(tmp_path, config_file, registry, caplog) -> None:
    caplog.set_level(logging.INFO, logger="tal")
    out = tmp_path / "run"
    base = [str(config_file), "--output-dir", str(out), "--resume", "auto"]
    assert train_cmd.run_train(parse(train_cmd.TRAIN, [*base, "--set", "train.epochs=1"]), registry) == 0
    assert "no last.pt in" in caplog.text and "starting a new run" in caplog.text
    caplog.clear()
    assert train_cmd.run_train(parse(train_cmd.TRAIN, [*base, "--set", "train.epochs=2"]), registry) == 0
    assert f"resumed {out / 'last.pt'}: 1 of 2 epochs done (step 3), best acc = " in caplog.text


def test_stale_temporary_file_of_a_killed_save_is_removed_at_the_next_save(tmp_path) -> None:
    from tal.core.engine import save_checkpoint

    stale = tmp_path / ".last.pt.0123456789ab.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".best.pt.0123456789ab.tmp"  # another file's temporary: not ours to remove
    other.write_bytes(b"x")
    save_checkpoint({"epoch": 1}, tmp_path / "last.pt")
    assert not stale.exists() and other.exists()
    assert load_checkpoint(tmp_path / "last.pt") == {"epoch": 1}


# -- errors before anything is written ------------------------------------------------------------
def test_input_dim_disagreement_is_caught_by_validate_and_before_a_run_folder(tmp_path, registry, capsys) -> None:
    from tal.core import datasets
    from tal.core.cli import config_cmd

    datasets.register(registry)
    cfg = dict(CONFIG, data={"train": {"name": "synthetic-segmentation", "num_videos": 2, "input_dim": 16}})
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    parser = argparse.ArgumentParser()
    config_cmd.CONFIG.add_arguments(parser)
    from tal.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data\.train\.input_dim is 16 but model\.input_dim is 8"):
        config_cmd._run(parser.parse_args(["validate", str(path)]), registry)
    out = tmp_path / "run"
    assert train_cmd.run_train(parse(train_cmd.TRAIN, [str(path), "--output-dir", str(out)]), registry) == 2
    assert "model.input_dim is 8" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=[1", "the value is not valid YAML"),
        ("train..epochs=1", "empty field name"),
        ("epochs", "must look like"),
    ],
)
def test_malformed_set_is_one_line(tmp_path, config_file, registry, capsys, override, message) -> None:
    args = parse(train_cmd.TRAIN, [str(config_file), "--output-dir", str(tmp_path / "x"), "--set", override])
    assert train_cmd.run_train(args, registry) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_anchor_bomb_gives_a_short_error(tmp_path, registry, capsys) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\nmodel: {name: frame-mlp, input_dim: 8, num_classes: 3, hidden_dim: *a7}\n")
    args = parse(train_cmd.TRAIN, [str(path), "--output-dir", str(tmp_path / "x")])
    assert train_cmd.run_train(args, registry) == 2
    err = capsys.readouterr().err
    assert "model.hidden_dim" in err and len(err) < 6000


# -- splits of presets ---------------------------------------------------------------------------
def _split_registry() -> Registry:
    reg = make_registry()

    def loader(split: int) -> dict:
        cfg = json.loads(json.dumps(CONFIG))
        cfg["data"]["val"]["seed"] = split  # each split scores other videos
        cfg["train"]["output_dir"] = f"runs/split{split}"
        return cfg

    reg.add_preset("toy/splits", loader, "toy with splits", splits=(1, 2))
    return reg


def test_train_and_eval_per_split_with_the_mean(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    reg = _split_registry()
    for k in (1, 2):
        argv = ["toy/splits", "--split", str(k), "--set", "train.epochs=1"]
        assert train_cmd.run_train(parse(train_cmd.TRAIN, argv), reg) == 0
        assert (tmp_path / f"runs/split{k}/last.pt").is_file()
    capsys.readouterr()
    args = parse(train_cmd.EVAL, ["toy/splits", "--split", "all", "--ckpt", "runs/split{split}/last.pt", "--json"])
    assert train_cmd.run_eval(args, reg) == 0
    out = json.loads(capsys.readouterr().out)
    accs = [out["splits"][k]["acc"] for k in ("1", "2")]
    assert out["mean"]["acc"] == pytest.approx(sum(accs) / 2)
    args = parse(train_cmd.EVAL, ["toy/splits", "--split", "1,2", "--ckpt", "runs/split{split}/last.pt"])
    assert train_cmd.run_eval(args, reg) == 0
    table = capsys.readouterr().out
    assert "metrics per split" in table and "mean" in table
    bad = parse(train_cmd.EVAL, ["toy/splits", "--split", "all", "--ckpt", "runs/split1/last.pt"])
    assert train_cmd.run_eval(bad, reg) == 2
    assert "must contain {split}" in capsys.readouterr().err
    bad = parse(train_cmd.EVAL, ["toy/splits", "--split", "7", "--ckpt", "runs/split{split}/last.pt"])
    assert train_cmd.run_eval(bad, reg) == 2
    assert "has splits [1, 2]" in capsys.readouterr().err


# -- saving per-video scores ------------------------------------------------------------------------
class ClipsConfig(ComponentConfig):
    name: Literal["clips"] = "clips"


class ScaleConfig(ComponentConfig):
    name: Literal["scale"] = "scale"


def _recognition_registry() -> Registry:
    import torch
    from torch import nn

    from tal.core.metrics import register as register_metrics

    class Clips:
        """Four 'videos' whose label is the argmax of their 3-d feature."""

        feats = torch.tensor([[3.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0], [0, 5.0, 0]])

        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int):
            return f"c{i}", self.feats[i], int(self.feats[i].argmax())

        def collate(self, items):
            return {
                "video_ids": [x[0] for x in items],
                "features": torch.stack([x[1] for x in items]),
                "targets": [x[2] for x in items],
            }

    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, batch):
            logits = batch["features"] * self.w
            return list(logits) if not self.training else {"loss": logits.sum()}

    reg = Registry()
    register_metrics(reg)
    reg.add_dataset("clips", lambda c: Clips(), config=ClipsConfig)
    reg.add_model("scale", lambda c: Scale(), config=ScaleConfig)
    return reg


def test_eval_saves_per_video_scores(tmp_path, registry, capsys) -> None:
    import numpy as np
    import torch

    from tal.core.engine import save_checkpoint

    reg = _recognition_registry()
    cfg = {"model": {"name": "scale"}, "data": {"val": {"name": "clips"}}, "metric": {"name": "recognition"},
           "train": {"device": "cpu", "progress": False, "eval_batch_size": 3}}  # fmt: skip
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    save_checkpoint({"model": {"w": torch.tensor([2.0])}}, tmp_path / "m.pt")
    args = parse(
        train_cmd.EVAL, [str(path), "--ckpt", str(tmp_path / "m.pt"), "--save-scores", str(tmp_path / "s.npz")]
    )
    assert train_cmd.run_eval(args, reg) == 0
    saved = np.load(tmp_path / "s.npz")
    assert saved["names"].tolist() == ["c0", "c1", "c2", "c3"]
    np.testing.assert_allclose(saved["scores"], 2.0 * np.array([[3, 0, 0], [0, 2, 0], [0, 0, 1], [0, 5, 0]]))
    assert saved["labels"].tolist() == [0, 1, 2, 1]
    # a model predicting frame labels has no score vector per video: one clear error
    args = parse(train_cmd.EVAL, [str(path := tmp_path / "seg.yaml"), "--ckpt", str(tmp_path / "last.pt")])
    path.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "run"
    assert train_cmd.run_train(parse(train_cmd.TRAIN, [str(path), "--output-dir", str(out), "--set", "train.epochs=1"]),
                               registry) == 0  # fmt: skip
    bad = parse(train_cmd.EVAL, [str(path), "--ckpt", str(out / "last.pt"), "--save-scores", str(tmp_path / "x.npz")])
    assert train_cmd.run_eval(bad, registry) == 2
    assert "only models that predict one score vector per video" in capsys.readouterr().err


def test_trainer_from_experiment_builds_each_section_with_the_registry_given(
    registry: Registry, tmp_path: Path
) -> None:
    from tal.core.engine import Trainer

    cfg = load_experiment(CONFIG, registry)
    trainer = Trainer.from_experiment(cfg, registry, tmp_path, progress=False)
    assert type(trainer.model).__name__ == "FrameMLP" and trainer.model.net[0].out_channels == 16
    assert len(trainer.train_set) == 6 and len(trainer.val_set) == 3
    assert type(trainer.metric).__name__ == "FrameAccuracy"
    assert trainer.config == cfg.train and trainer.output_dir == tmp_path
    no_val = load_experiment({**CONFIG, "data": {"train": CONFIG["data"]["train"]}, "metric": None}, registry)
    bare = Trainer.from_experiment(no_val, registry, tmp_path / "b", progress=False)
    assert bare.val_set is None and bare.metric is None
