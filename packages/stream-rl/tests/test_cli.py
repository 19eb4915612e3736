"""tal train / eval on the MS-TCN layout, then tal stream and tal infer on a feature file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tal.core.cli.main import main
from tal.core.formats import write_bundle, write_ground_truth, write_mapping

CLASSES = ["take", "pour", "stir", "background"]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GTEA-like MS-TCN folder: 6 videos, 6-d features (C, T) per frame, 4 classes."""
    root = tmp_path_factory.mktemp("gtea")
    rng = np.random.default_rng(0)
    means = rng.normal(size=(4, 6)) * 2
    names = []
    for v in range(6):
        labels = np.repeat(rng.permutation(4), rng.integers(8, 20, size=4))
        feats = means[labels].T + 0.3 * rng.normal(size=(6, len(labels)))
        (root / "features").mkdir(exist_ok=True)
        np.save(root / "features" / f"video{v}.npy", feats.astype(np.float32))
        write_ground_truth(root / "groundTruth" / f"video{v}.txt", labels, CLASSES)
        names.append(f"video{v}.txt")
    write_mapping(root / "mapping.txt", CLASSES)
    write_bundle(root / "splits" / "train.split1.bundle", names[:4])
    write_bundle(root / "splits" / "test.split1.bundle", names[4:])
    return root


def experiment(root: Path, out: Path) -> Path:
    data = {"name": "mstcn", "root": str(root), "sample_rate": 1, "input_dim": 6}
    exp = {
        "model": {
            "name": "svtas-rl",
            "num_classes": 4,
            "clip_len": 8,
            "sample_rate": 2,
            "backbone": {"name": "stream-features", "input_dim": 6},
            "head": {"num_f_maps": 8, "encoder_layers": 2, "decoder_layers": 1, "num_decoders": 1, "state_len": 4},
        },
        "data": {
            "train": {
                "name": "stream-clips",
                "source": {**data, "split": "train.split1.bundle"},
                "clip_len": 8,
                "sample_rate": 2,
            },
            "val": {**data, "split": "test.split1.bundle"},
            "test": {**data, "split": "test.split1.bundle"},
        },
        "metric": {"name": "segmentation"},
        "train": {"epochs": 2, "batch_size": 1, "output_dir": str(out), "progress": False},
    }
    path = out.parent / "exp.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


@pytest.fixture(scope="module")
def trained(layout: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("run") / "run"
    config = experiment(layout, out)
    assert main(["train", str(config)]) == 0
    assert (out / "best.pt").is_file()
    return config, out / "best.pt"


def test_eval_prints_streaming_metrics(trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, ckpt = trained
    assert main(["eval", str(config), "--ckpt", str(ckpt), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"F1@10", "F1@25", "F1@50", "Edit", "Acc"} <= set(scores)


def test_tal_stream_reports_latency_and_metrics(
    trained: tuple[Path, Path], layout: Path, tmp_path: Path, capsys
) -> None:
    config, ckpt = trained
    out_json = tmp_path / "stream.json"
    args = ["stream", "--config", str(config), "--ckpt", str(ckpt), "--feat", str(layout / "features" / "video4.npy")]
    args += [
        "--clip",
        "5",
        "--threads",
        "1",
        "--gt",
        str(layout / "groundTruth" / "video4.txt"),
        "--json",
        str(out_json),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "clip latency median" in printed and "real-time factor" in printed and "Edit" in printed
    assert "offline: whole video" in printed
    doc = json.loads(out_json.read_text())
    n = np.load(layout / "features" / "video4.npy").shape[1]
    assert len(doc["labels"]) == n and len(doc["clip_seconds"]) == -(-n // 16)
    keys = {"F1@10", "F1@25", "F1@50", "Edit", "Acc"}
    assert set(doc["metrics"]) == keys | {f"{k} (offline: whole video as one clip)" for k in keys}


def test_tal_stream_names_bad_input(trained: tuple[Path, Path], layout: Path, capsys) -> None:
    config, ckpt = trained
    bad = ["stream", "--config", str(config), "--ckpt", str(ckpt), "--feat", str(layout / "nope.npy")]
    assert main(bad) == 2
    assert "nope.npy" in capsys.readouterr().err


def test_tal_infer_runs_the_stream(trained: tuple[Path, Path], layout: Path, tmp_path: Path, capsys) -> None:
    config, ckpt = trained
    fig = tmp_path / "labels.png"
    args = ["infer", "--config", str(config), "--ckpt", str(ckpt), "--feat", str(layout / "features" / "video5.npy")]
    args += ["--gt", str(layout / "groundTruth" / "video5.txt"), "--save-fig", str(fig), "--stream-piece", "3"]
    assert main(args) == 0
    assert "clip latency median" in capsys.readouterr().out
    assert fig.is_file() and fig.stat().st_size > 0
