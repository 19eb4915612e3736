"""`tal infer`: the core command loads config, model and weights, then hands over to the model's inferencer."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from test_engine_support import make_registry

from tal.core.cli import infer_cmd
from tal.core.engine import save_checkpoint
from tal.core.errors import ConfigError
from tal.core.registry import Registry

CONFIG = {"model": {"name": "frame-mlp", "input_dim": 8, "num_classes": 3, "hidden_dim": 16}}


class RecordingInferencer:
    """Stands in for a method's inferencer: records what it was handed."""

    help = "test inferencer"

    def __init__(self) -> None:
        self.calls: list[tuple[argparse.Namespace, Any, Any]] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--top-k", "--top_k", dest="top_k", type=int, default=None)

    def run(self, args: argparse.Namespace, model: Any, experiment: Any, registry: Registry) -> int:
        self.calls.append((args, model, experiment))
        return 0


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Registry, RecordingInferencer, Path, Path]:
    reg = make_registry()
    runner = RecordingInferencer()
    reg.add_inferencer("frame-mlp", runner)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    model = reg.build("models", reg.get("models", "frame-mlp").config(**{k: v for k, v in CONFIG["model"].items()}))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    save_checkpoint({"model": model.state_dict()}, tmp_path / "m.pt")
    np.save(tmp_path / "video.npy", np.zeros((10, 8), np.float32))
    return reg, runner, cfg, tmp_path


def parse(reg: Registry, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tal infer")
    infer_cmd.add_arguments(parser, reg)
    return parser.parse_args(argv)


def test_infer_builds_loads_and_hands_over(setup, monkeypatch) -> None:
    reg, runner, cfg, d = setup
    monkeypatch.chdir(d)
    args = parse(reg, ["--config", str(cfg), "--ckpt", str(d / "m.pt"), "--feat", str(d / "video.npy"),
                       "--top_k", "10", "--save_fig"])  # fmt: skip
    assert infer_cmd.run(args, reg) == 0
    [(got, model, experiment)] = runner.calls
    assert got.top_k == 10 and experiment.model.name == "frame-mlp" and not model.training
    assert all(bool((p == 0.5).all()) for p in model.parameters())  # the checkpoint's weights
    assert got.figure == Path("video.png")  # --save-fig without a path, no --json: VIDEO.png here


def test_figure_path_defaults(tmp_path) -> None:
    ns = argparse.Namespace(save_fig="", json=tmp_path / "out" / "dets.json", feat=Path("/data/v1.npy"))
    assert infer_cmd.figure_path(ns) == tmp_path / "out" / "dets.png"
    ns.save_fig = "x.svg"
    assert infer_cmd.figure_path(ns) == Path("x.svg")
    ns.save_fig = None
    assert infer_cmd.figure_path(ns) is None


def test_bad_figure_extension_fails_before_anything_runs(setup) -> None:
    reg, runner, cfg, d = setup
    args = parse(reg, ["--config", str(cfg), "--ckpt", str(d / "m.pt"), "--feat", str(d / "video.npy"),
                       "--json", str(d / "o.json"), "--save-fig", str(d / "x.xyz")])  # fmt: skip
    with pytest.raises(ConfigError, match=r"--save-fig .*x\.xyz: extension '\.xyz'; use one of .*\.png"):
        infer_cmd.run(args, reg)
    assert runner.calls == [] and not (d / "o.json").exists()


def test_cuda_on_a_cpu_torch_is_one_clear_error(setup) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    reg, _runner, cfg, d = setup
    args = parse(reg, ["--config", str(cfg), "--ckpt", str(d / "m.pt"), "--feat", str(d / "video.npy"),
                       "--device", "cuda"])  # fmt: skip
    with pytest.raises(ConfigError, match="'cuda' requested but CUDA is not available"):
        infer_cmd.run(args, reg)


def test_a_model_without_an_inferencer_is_named(setup) -> None:
    _reg, _, cfg, d = setup
    bare = make_registry()
    args = parse(bare, ["--config", str(cfg), "--ckpt", str(d / "m.pt"), "--feat", str(d / "video.npy")])
    with pytest.raises(ConfigError, match="model 'frame-mlp' has no `tal infer` runner; models that have one: none"):
        infer_cmd.run(args, bare)
