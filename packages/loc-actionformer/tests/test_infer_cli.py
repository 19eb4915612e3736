"""The `tal infer` contract: arguments, table, JSON, figure, configs of every kind, and its error messages."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from synth_data import TINY_MODEL, tiny_experiment, tiny_release_config

from tal.core.cli.main import main
from tal.core.formats import AnnotationSet, write_annotations, write_features
from tal.loc_actionformer import ActionFormer, ActionFormerConfig, model_config_from_release
from tal.loc_actionformer.data import ActionFormerFeatures, ActionFormerFeaturesConfig
from tal.loc_actionformer.release.presets import release_config_path

pytest.importorskip("tal.cuda_ops")  # the default NMS


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("infer")
    exp = tiny_experiment(root)
    cfg_path = root / "exp.yaml"
    cfg_path.write_text(yaml.safe_dump(exp))
    torch.manual_seed(0)
    model_cfg = ActionFormerConfig(**{k: v for k, v in TINY_MODEL.items() if k != "name"})
    model, ema = ActionFormer(model_cfg), ActionFormer(model_cfg)
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(0.05 * torch.randn_like(p))
    # the release's layout: DataParallel prefixes, EMA weights beside the trained ones
    ckpt = {
        "epoch": 3,
        "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
        "state_dict_ema": {f"module.{k}": v for k, v in ema.state_dict().items()},
    }
    torch.save(ckpt, root / "epoch_003.pth.tar")
    val = ActionFormerFeatures(ActionFormerFeaturesConfig(**exp["data"]["val"]))
    return {"root": root, "config": cfg_path, "ckpt": root / "epoch_003.pth.tar", "ema": ema.eval(), "val": val}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["infer", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def feature_file(setup: dict[str, Any], index: int = 0) -> Path:
    return Path(setup["root"]) / "features" / f"{setup['val'].video_ids[index]}.npy"


def test_json_and_table_match_the_model(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    ds = setup["val"]
    rec = ds[0]
    out_json = Path(setup["root"]) / "dets.json"
    code, out, _ = run(
        capsys,
        "--config", str(setup["config"]),
        "--ckpt", str(setup["ckpt"]),
        "--feat", str(feature_file(setup)),
        "--duration", str(rec.duration),
        "--json", str(out_json),
    )  # fmt: skip
    assert code == 0
    data = json.loads(out_json.read_text())
    assert list(data["results"]) == [rec.video_id] and data["version"] == "VERSION 1.3"
    assert data["video"] == {
        "video_id": rec.video_id,
        "feature_steps": 60,
        "fps": 30.0,
        "fps_from": "the dataset's default_fps",
        "duration": rec.duration,
        "duration_from": "--duration",
    }
    dets = data["results"][rec.video_id]
    assert dets and all(list(d) == ["segment", "label", "score"] for d in dets)
    scores = [d["score"] for d in dets]
    assert scores == sorted(scores, reverse=True)
    # the same detections as the EMA weights run on the dataset's batch
    with torch.no_grad():
        (expected,) = setup["ema"](ds.collate([rec]))
    expected = expected.sorted_by_score()
    assert len(dets) == len(expected) == 50  # max_seg_num of the config
    np.testing.assert_allclose([d["segment"] for d in dets], expected.segments.numpy(), rtol=1e-6, atol=1e-6)
    assert [d["label"] for d in dets] == expected.labels.tolist()
    np.testing.assert_allclose(scores, expected.scores.numpy(), rtol=1e-6)
    assert "start (s)" in out and "top 10 of 50" in out  # without --top-k the 10 best are printed


def test_top_k_defaults_and_figure(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(setup["root"])
    feats = np.load(feature_file(setup))  # (T, C)
    default_duration = ((feats.shape[0] - 1) * 4 + 16) / 30  # fps from the config's default_fps
    code, out, _ = run(
        capsys,
        "--config", str(setup["config"]),
        "--ckpt", str(setup["ckpt"]),
        "--feat", str(feature_file(setup)),
        "--top-k", "3",
        "--json", str(root / "top3.json"),
        "--save-fig", str(root / "fig.png"),
    )  # fmt: skip
    assert code == 0
    dets = next(iter(json.loads((root / "top3.json").read_text())["results"].values()))
    assert len(dets) == 3 and "top 3 of 3" in out
    assert all(0 <= d["segment"][0] <= d["segment"][1] <= default_duration + 1e-9 for d in dets)
    assert (root / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --fps changes the time axis: the same grid detections at twice the fps end twice as early
    run(capsys, "--config", str(setup["config"]), "--ckpt", str(setup["ckpt"]), "--feat", str(feature_file(setup)),
        "--top-k", "3", "--fps", "60", "--duration", "1000", "--json", str(root / "fps60.json"))  # fmt: skip
    run(capsys, "--config", str(setup["config"]), "--ckpt", str(setup["ckpt"]), "--feat", str(feature_file(setup)),
        "--top-k", "3", "--fps", "30", "--duration", "1000", "--json", str(root / "fps30.json"))  # fmt: skip
    d60 = next(iter(json.loads((root / "fps60.json").read_text())["results"].values()))
    d30 = next(iter(json.loads((root / "fps30.json").read_text())["results"].values()))
    np.testing.assert_allclose([d["segment"] for d in d60], [[s / 2, e / 2] for s, e in (d["segment"] for d in d30)])


def test_release_yaml_and_preset_configs(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(setup["root"])
    exp = yaml.safe_load(Path(setup["config"]).read_text())
    val = exp["data"]["val"]
    release = tiny_release_config(val["annotation_file"], val["feature_dir"])
    rel_path = root / "release.yaml"
    rel_path.write_text(yaml.safe_dump(release))
    common = ["--ckpt", str(setup["ckpt"]), "--feat", str(feature_file(setup)), "--top-k", "5"]
    outs = {}
    for name, cfg in (("ours", str(setup["config"])), ("release", str(rel_path))):
        assert run(capsys, "--config", cfg, *common, "--json", str(root / f"{name}.json"))[0] == 0
        outs[name] = json.loads((root / f"{name}.json").read_text())
    assert outs["ours"] == outs["release"]
    shrink = [
        "model.input_dim=16", "model.num_classes=3", "model.max_seq_len=64", "model.backbone_arch=[2,2,2]",
        "model.regression_range=[[0,4],[4,8],[8,10000]]", "model.n_mha_win_size=5", "model.embd_dim=32",
        "model.fpn_dim=32", "model.head_dim=32", "model.max_buffer_len_factor=2.0", "model.test_cfg.max_seg_num=50",
        "model.test_cfg.pre_nms_topk=200", "model.test_cfg.multiclass_nms=true", "model.test_cfg.voting_thresh=0.75",
        "model.test_cfg.min_score=0.01", "model.train_cfg.head_empty_cls=[]", "data.val.default_fps=30",
        "data.val.input_dim=16", "data.train.input_dim=16",
    ]  # fmt: skip
    args = [a for item in shrink for a in ("--set", item)]
    code, _, err = run(
        capsys, "--config", "loc-actionformer/thumos_i3d", *args, *common, "--json", str(root / "p.json")
    )
    assert code == 0, err
    assert json.loads((root / "p.json").read_text()) == outs["ours"]


def bad_file(root: Path, name: str, array: np.ndarray) -> Path:
    path = root / name
    np.save(path, array)
    return path


@pytest.mark.parametrize(
    ("name", "array", "message"),
    [
        ("wrong_dim.npy", np.zeros((40, 12), np.float32), "expects input_dim=16"),
        ("transposed.npy", np.zeros((16, 40), np.float32), "transposed"),
        ("empty.npy", np.zeros((0, 16), np.float32), "empty"),
        ("nan.npy", np.full((40, 16), np.nan, np.float32), "replace NaN"),
    ],
)
def test_bad_feature_files(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str], name: str, array: np.ndarray, message: str
) -> None:
    path = bad_file(Path(setup["root"]), name, array)
    code, _, err = run(capsys, "--config", str(setup["config"]), "--ckpt", str(setup["ckpt"]), "--feat", str(path))
    assert code == 2 and message in err and str(path) in err


def test_bad_configs_and_checkpoints(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(setup["root"])
    common = ["--ckpt", str(setup["ckpt"]), "--feat", str(feature_file(setup))]
    code, _, err = run(capsys, "--config", str(setup["config"]), "--set", "model.max_seq_len=60", *common)
    assert code == 2 and "max_seq_len 60 is not divisible by 16" in err and "multiple of 16, e.g. 64" in err
    no_fps = ["--set", "data.val.default_fps=null", "--set", "data.val.dataset_name=anet"]
    code, _, err = run(capsys, "--config", str(setup["config"]), *no_fps, *common)
    assert code == 2 and "sets no default_fps for its 'anet' dataset: pass --fps" in err
    code, _, err = run(capsys, "--config", "no/such/preset", *common)
    assert code == 2 and "preset" in err
    other = dict(TINY_MODEL, embd_dim=16, fpn_dim=16, head_dim=16)
    exp = yaml.safe_load(Path(setup["config"]).read_text())
    exp["model"] = other
    (root / "other.yaml").write_text(yaml.safe_dump(exp))
    code, _, err = run(capsys, "--config", str(root / "other.yaml"), *common)
    assert code == 2 and "layout) do not fit ActionFormer" in err
    assert "model.embd_dim is 16 here, the checkpoint has 32" in err


def test_feature_files_in_other_layouts(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(setup["root"])
    feats = torch.from_numpy(np.load(feature_file(setup))).t()
    write_features(root / "as_ct.npy", feats, layout="CT")
    code, _, _ = run(
        capsys, "--config", str(setup["config"]), "--ckpt", str(setup["ckpt"]), "--feat", str(root / "as_ct.npy"),
        "--set", "data.val.feature_layout=CT", "--top-k", "5", "--json", str(root / "ct.json"),
    )  # fmt: skip
    assert code == 0
    run(capsys, "--config", str(setup["config"]), "--ckpt", str(setup["ckpt"]), "--feat", str(feature_file(setup)),
        "--top-k", "5", "--json", str(root / "tc.json"))  # fmt: skip
    ct = json.loads((root / "ct.json").read_text())["results"]["as_ct"]
    tc = next(iter(json.loads((root / "tc.json").read_text())["results"].values()))
    assert ct == tc


def test_release_users_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tal infer --config thumos_i3d.yaml --ckpt checkpoint_ema.pth.tar --feat video.npy --top_k 10 --save_fig`
    with the release's own config file and a checkpoint in its layout: no --fps, no figure path."""
    monkeypatch.chdir(tmp_path)
    Path("thumos_i3d.yaml").write_text(release_config_path("thumos_i3d").read_text())
    torch.manual_seed(0)
    model = ActionFormer(model_config_from_release("thumos_i3d.yaml"))
    weights = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 34, "state_dict": weights, "state_dict_ema": weights}, "checkpoint_ema.pth.tar")
    del model, weights
    steps = 150
    np.save("video.npy", np.random.default_rng(0).standard_normal((steps, 2048)).astype(np.float32))
    cmd = ["--config", "thumos_i3d.yaml", "--ckpt", "checkpoint_ema.pth.tar", "--feat", "video.npy"]
    proc = subprocess.run(
        [sys.executable, "-m", "tal.core.cli.main", "infer", *cmd, "--top_k", "10", "--save_fig"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    duration = ((steps - 1) * 4 + 16) / 30  # THUMOS14 I3D: stride 4, 16 frames, 30 fps
    header = (
        f"video: {steps} feature steps; 30 fps (every video of the release's thumos annotations has it); "
        f"duration {duration:.2f} s (the features' span)"
    )
    assert header in " ".join(proc.stdout.split())  # rich may wrap the line
    assert "top 10 of 10 detections" in proc.stdout
    assert Path("video.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_duration_shorter_than_the_features(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    root = Path(setup["root"])
    common = ["--config", str(setup["config"]), "--ckpt", str(setup["ckpt"]), "--feat", str(feature_file(setup))]
    assert run(capsys, *common, "--json", str(root / "full.json"))[0] == 0
    full = next(iter(json.loads((root / "full.json").read_text())["results"].values()))
    cut = 3.0  # the features span 8.4 s
    past = [d for d in full if d["segment"][0] >= cut]
    assert past, "some detections must start after the cut for this test"
    with caplog.at_level(logging.WARNING):
        assert run(capsys, *common, "--duration", str(cut), "--json", str(root / "cut.json"))[0] == 0
    short = next(iter(json.loads((root / "cut.json").read_text())["results"].values()))
    assert len(short) == len(full) - len(past)  # the detections clipping would empty are dropped ...
    assert all(0 <= d["segment"][0] < d["segment"][1] <= cut for d in short)  # ... none is [3.00, 3.00]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "--duration 3.00 s is shorter than the span of the 60 feature steps (8.40 s at 30 fps)" in messages
    assert f"{len(past)} of {len(full)} detections lie past the duration 3.00 s" in messages


def test_device_cuda_without_cuda_is_one_line(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here: --device cuda is valid")
    common = ["--config", str(setup["config"]), "--ckpt", str(setup["ckpt"]), "--feat", str(feature_file(setup))]
    code, out, err = run(capsys, *common, "--device", "cuda", "--json", str(Path(setup["root"]) / "cuda.json"))
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "'cuda' requested but CUDA is not available" in err
    assert not (Path(setup["root"]) / "cuda.json").exists()


def test_figure_with_ground_truth_class_names_and_default_path(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(setup["root"])
    exp = yaml.safe_load(Path(setup["config"]).read_text())
    ann = Path(exp["data"]["val"]["annotation_file"])
    drawn: dict[str, Any] = {}

    def record(path: Path, detections: Any, duration: float, **kwargs: Any) -> Path:
        drawn.update(kwargs, path=Path(path), duration=duration, n=len(detections))
        return Path(path)

    monkeypatch.setattr("tal.core.figures.save_timeline", record)
    common = ["--config", str(setup["config"]), "--ckpt", str(setup["ckpt"]), "--feat", str(feature_file(setup))]
    code, out, _ = run(capsys, *common, "--gt", str(ann), "--json", str(root / "gt.json"), "--save-fig")
    assert code == 0
    assert drawn["path"] == root / "gt.png"  # --save-fig without a path: next to the JSON
    assert drawn["class_names"] == ["a", "b", "c"] and drawn["duration"] == pytest.approx(8.4)
    gt = drawn["ground_truth"]
    expected_gt = setup["val"][0].segments
    torch.testing.assert_close(gt.segments, expected_gt.segments)
    assert gt.labels.tolist() == expected_gt.labels.tolist()
    assert f"against {ann}: average mAP" in " ".join(out.split())
    assert any(f"{c}: {n}" in out for c, n in enumerate("abc"))  # the table names the classes


def test_ground_truth_without_the_video_is_an_error(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    other = Path(setup["root"]) / "other_gt.json"
    write_annotations(other, AnnotationSet({}, {0: "a"}))
    common = ["--config", str(setup["config"]), "--ckpt", str(setup["ckpt"]), "--feat", str(feature_file(setup))]
    code, _, err = run(capsys, *common, "--gt", str(other))
    assert code == 2 and "no annotations of video 'vid_06' (--gt)" in err
