"""``tal train`` and ``tal eval`` end to end on a tiny synthetic dataset registered here."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest
import yaml
from test_engine_support import make_registry

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
