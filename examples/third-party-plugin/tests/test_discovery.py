"""The plugin is found through its entry point, shows in `tal plugins`, and is usable from YAML."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from tal.core.config import load_experiment
from tal.core.registry import get_registry


def _tal(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tal.core.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )


def test_tal_plugins_json_lists_the_example():
    out = _tal("plugins", "--json")
    assert out.returncode == 0, out.stderr
    plugins = {p["plugin"]: p for p in json.loads(out.stdout)["plugins"]}
    ex = plugins["example"]
    assert ex["status"] == "ok", ex["error"]
    assert ex["distribution"] == "tal-example-plugin" and ex["version"] == "0.1.0"
    assert ex["registered"] == {
        "backbones": ["example-tcn"],
        "datasets": ["example-sine"],
        "metrics": ["example-frame-error"],
    }
    assert plugins["core"]["status"] == "ok"


def test_tal_plugins_table_shows_the_example():
    out = _tal("plugins")
    assert out.returncode == 0, out.stderr
    assert "example-tcn" in out.stdout and "tal-example-plugin" in out.stdout


def test_disabling_the_example_removes_it_only():
    out = _tal("plugins", "--json", TAL_DISABLE_PLUGINS="example")
    plugins = {p["plugin"]: p for p in json.loads(out.stdout)["plugins"]}
    assert plugins["example"]["status"] == "disabled"
    assert plugins["core"]["status"] == "ok"


def test_components_selectable_by_name_from_yaml(tmp_path):
    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(
        "model:\n"
        "  name: frame-classifier\n"
        "  num_classes: 3\n"
        "  backbone: {name: example-tcn, input_dim: 16, hidden_dim: 8, num_layers: 2}\n"
        "data:\n"
        "  train: {name: example-sine, input_dim: 16, num_videos: 4, length: 48}\n"
        "  val: {name: example-sine, input_dim: 16, num_videos: 2, length: 48, seed: 1}\n"
        "metric: {name: example-frame-error}\n"
        "train: {epochs: 1, batch_size: 2, progress: false}\n"
    )
    registry = get_registry()
    cfg = load_experiment(cfg_file, registry)
    assert type(cfg.model.backbone).__name__ == "DilatedTCNConfig"
    backbone = registry.build("backbones", cfg.model.backbone)
    assert backbone.out_channels == 8
    dataset = registry.build("datasets", cfg.data.train)
    assert len(dataset) == 4
    out = _tal("config", "validate", str(cfg_file))
    assert out.returncode == 0 and "valid" in out.stdout, out.stderr
    bad = cfg_file.read_text().replace("num_layers: 2", "num_layerz: 2")
    cfg_file.write_text(bad)
    out = _tal("config", "validate", str(cfg_file))
    assert out.returncode == 2
    assert "model.backbone.num_layerz" in out.stderr and "num_layers" in out.stderr


def test_train_end_to_end_with_plugin_components(tmp_path):
    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(
        "model:\n"
        "  name: frame-classifier\n"
        "  num_classes: 3\n"
        "  backbone: {name: example-tcn, input_dim: 16, hidden_dim: 16, num_layers: 3}\n"
        "data:\n"
        "  train: {name: example-sine, input_dim: 16, num_videos: 8, length: 64, noise: 0.1}\n"
        "  val: {name: example-sine, input_dim: 16, num_videos: 4, length: 64, noise: 0.1, seed: 1}\n"
        "metric: {name: example-frame-error}\n"
        f"train: {{epochs: 8, batch_size: 4, progress: false, output_dir: '{tmp_path / 'run'}',"
        " optimizer: {lr: 0.01}, scheduler: {name: constant}}\n"
    )
    out = _tal("train", str(cfg_file))
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    errors = [float(r["val/frame_error"]) for r in rows]
    assert len(errors) == 8
    # classes are separable sinusoids: the TCN + linear head must learn them almost perfectly
    assert errors[-1] < 10.0, errors
    # the error metric declares higher_is_better = False, so best.pt tracks the lowest error
    assert f"best frame_error = {min(errors):.4f}" in out.stderr, out.stderr
