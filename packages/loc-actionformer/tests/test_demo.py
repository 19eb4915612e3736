"""The synthetic THUMOS-like data generator and `tal demo --only loc-actionformer`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tal.core.cli.main import main
from tal.core.formats import read_annotations, read_features
from tal.core.registry import get_registry
from tal.loc_actionformer.synthetic import FEAT_STRIDE, FPS, NUM_FRAMES, SyntheticSpec, write_synthetic_thumos


def test_synthetic_thumos_files(tmp_path: Path) -> None:
    spec = SyntheticSpec(num_train=4, num_val=2, seed=3)
    ann_file, feat_dir = write_synthetic_thumos(tmp_path, spec)
    ann = read_annotations(ann_file)
    assert sorted(ann.subsets) == ["test", "validation"] and len(ann) == 6
    assert ann.num_classes <= spec.num_classes
    for video in ann:
        feats = read_features(feat_dir / f"{video.video_id}.npy")
        assert video.duration is not None and video.fps == FPS
        assert spec.min_duration <= video.duration <= spec.max_duration
        assert feats.shape == (spec.input_dim, int((video.duration * FPS - NUM_FRAMES) // FEAT_STRIDE) + 1)
        segs = video.segments.segments
        assert 2 <= len(segs) <= 6
        assert (segs[:, 0] >= 0).all() and (segs[:, 1] <= video.duration).all()
        assert (segs[1:, 0] >= segs[:-1, 1]).all()  # ordered, not overlapping
        lengths = segs[:, 1] - segs[:, 0]
        assert (lengths >= 1.0).all() and (lengths <= 10.0 + 1e-6).all()
    # an action adds its class pattern: its steps are far from the background
    video = next(iter(ann))
    feats = read_features(feat_dir / f"{video.video_id}.npy")
    centre = (video.segments.segments.mean(1) * FPS - NUM_FRAMES / 2) / FEAT_STRIDE
    inside = feats[:, centre.round().long()].norm(dim=0)
    assert float(inside.mean()) > float(feats.norm(dim=0).median())


def test_quick_demo_leaves_a_model_that_tal_infer_and_eval_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tal.cuda_ops")
    from tal.loc_actionformer.demo import run_demo

    out = run_demo(tmp_path, quick=True, registry=get_registry())
    assert set(out) == {"average_mAP", "mAP@0.5", "seconds"} and 0 <= out["average_mAP"] <= 100
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert len(results) == 8
    for dets in results.values():
        scores = [d["score"] for d in dets]
        assert scores == sorted(scores, reverse=True) and all(isinstance(d["label"], int) for d in dets)
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert np.isfinite(out["seconds"])
    # the run folder holds the config beside the checkpoints, as `tal train` leaves it
    run, video = tmp_path / "run", sorted(results)[0]
    config, best = run / "config.yaml", run / "best.pt"
    assert config.is_file() and best.is_file()
    feat = tmp_path / "data" / "i3d_features" / f"{video}.npy"
    capsys.readouterr()
    assert (
        main(
            [
                "infer",
                "--config",
                str(config),
                "--ckpt",
                str(best),
                "--feat",
                str(feat),
                "--json",
                str(tmp_path / "one.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "one.json").read_text())["results"][video] == results[video]
    capsys.readouterr()
    assert main(["eval", str(config), "--ckpt", str(best), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["average_mAP"] == pytest.approx(out["average_mAP"])
