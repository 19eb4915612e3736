"""Plugin registration, presets, the release checkpoint format, tal lst commands, ensembles and the demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tal.core.config import load_experiment
from tal.core.engine.checkpoint import find_weights, load_checkpoint
from tal.core.registry import load_registry
from tal.skeleton_lst import build_model
from tal.skeleton_lst.ensemble import StreamScores, ensemble, read_scores, write_scores


@pytest.fixture(scope="module")
def registry():
    return load_registry(strict=True)


def test_registered_components(registry) -> None:
    assert {"ctrgcn", "lst"} <= set(registry.names("models"))
    assert {"ntu-skeleton", "nw-ucla", "synthetic-skeleton"} <= set(registry.names("datasets"))
    assert "lst" in registry.names("commands") and "skeleton-lst" in registry.names("demos")
    assert "ctrgcn-release" in registry.names("checkpoint_formats")
    assert len([p for p in registry.names("presets") if p.startswith("skeleton-lst/")]) == 20


def test_presets_carry_the_published_settings(registry) -> None:
    cfg = load_experiment("skeleton-lst/ntu60-xsub-bone_motion", registry)
    assert cfg.model.name == "lst" and cfg.model.modality == "bone" and cfg.model.num_class == 60
    assert cfg.data.train.modality == "joint_motion" and cfg.data.train.random_rot
    assert cfg.data.val.p_interval == [0.95]
    t = cfg.train
    assert (t.epochs, t.batch_size, t.optimizer.name, t.optimizer.lr, t.optimizer.weight_decay) == (
        110,
        200,
        "sgd",
        0.1,
        5e-4,
    )
    assert (t.scheduler.warmup_epochs, t.scheduler.milestones, t.scheduler.gamma) == (5, [90, 100], 0.1)
    assert t.optimizer.nesterov and t.optimizer.momentum == 0.9 and not t.scheduler.milestones_after_warmup
    assert t.scheduler.warmup_per_epoch  # lr * (e + 1) / 5 per epoch, as the release's adjust_learning_rate
    ucla = load_experiment("skeleton-lst/ucla-joint", registry)
    assert (ucla.train.optimizer.lr, ucla.train.optimizer.weight_decay, ucla.train.batch_size) == (0.2, 4e-4, 64)
    assert ucla.data.train.repeat == 5 and ucla.model.dataset == "ucla"
    assert registry.build("models", ucla.model).loss_alpha == 1.0


def test_release_checkpoint_loads_strictly(registry, tmp_path: Path) -> None:
    release = build_model("lst", 60, "ntu")
    path = tmp_path / "runs-110-1234.pt"
    torch.save({f"module.{k}": v for k, v in release.state_dict().items()}, path)
    weights, layout = find_weights(load_checkpoint(path), registry, True, path)
    assert layout == "ctrgcn-release" and weights.strict
    model = build_model("lst", 60, "ntu")
    model.load_state_dict(weights.state_dict, strict=True)
    for k, v in release.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    # a model built from a tal config (wordllama, 256-d text) loads it too: the text branch is its own
    cfg = load_experiment({"model": {"name": "lst", "num_class": 60}}, registry)
    small = registry.build("models", cfg.model)
    small.load_state_dict(small.adapt_checkpoint_state(weights.state_dict), strict=True)


def test_lst_trains_through_the_registry(registry) -> None:
    cfg = load_experiment({"model": {"name": "lst", "num_class": 10, "dataset": "ucla", "base_channel": 8}}, registry)
    model = registry.build("models", cfg.model)
    batch = {"inputs": torch.randn(4, 3, 12, 20, 1), "labels": torch.tensor([0, 3, 3, 9])}
    losses = model(batch)
    assert set(losses) == {"loss", "ce", "contrastive"} and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert model.part_list[0].weight.grad is not None and model.logit_scale.grad is not None


def test_ensemble_weights_and_matching(tmp_path: Path) -> None:
    names = np.array(["a", "b", "c"])
    labels = np.array([0, 1, 1])
    joint = StreamScores(names, np.array([[1.0, 0.0], [0.4, 0.6], [0.9, 0.1]]), labels)
    bone = StreamScores(names[::-1], np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]), labels[::-1])
    total, result = ensemble({"joint": joint, "bone": bone})
    np.testing.assert_allclose(total, [[1.0, 1.0], [0.4, 1.6], [0.9, 1.1]])  # 2 streams: 1 x joint + 1 x bone
    assert result.topk[1] == pytest.approx(100 * 3 / 3)  # ties go to the lower class: a -> 0
    four = {k: joint for k in ("joint", "bone", "joint_motion", "bone_motion")}
    total4, _ = ensemble(four)
    np.testing.assert_allclose(total4, joint.scores * 2.0)  # 0.8 + 0.8 + 0.2 + 0.2
    path = write_scores(tmp_path / "j.npz", names, joint.scores, labels)
    back = read_scores(path)
    assert back.names.tolist() == ["a", "b", "c"]
    with pytest.raises(ValueError, match="same samples"):
        ensemble({"joint": joint, "bone": StreamScores(np.array(["a", "b", "x"]), joint.scores, labels)})


def test_tal_lst_ensemble_command(registry, tmp_path: Path, capsys) -> None:
    from tal.core.cli.main import main

    names = np.array(["a", "b"])
    write_scores(tmp_path / "j.npz", names, np.array([[0.9, 0.1], [0.6, 0.4]]), [0, 1])
    write_scores(tmp_path / "b.npz", names, np.array([[0.6, 0.4], [0.1, 0.9]]), [0, 1])
    code = main(["lst", "ensemble", "--joint", str(tmp_path / "j.npz"), "--bone", str(tmp_path / "b.npz"), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["joint"]["top1"] == 50.0 and out["bone"]["top1"] == 100.0 and out["ensemble"]["top1"] == 100.0


def test_demo_quick(tmp_path: Path) -> None:
    from tal.skeleton_lst.demo import run_demo

    results = run_demo(tmp_path, quick=True)
    assert {"joint top1", "bone top1", "ensemble top1"} <= set(results)
    assert (tmp_path / "skeleton.png").stat().st_size > 1000
    assert json.loads((tmp_path / "results.json").read_text())["ensemble top1"] == results["ensemble top1"]


def test_ntu_prepare_command_and_dataset(tmp_path: Path) -> None:
    from test_data import body, write_skeleton

    from tal.core.cli.main import main
    from tal.skeleton_lst.data.datasets import NTUSkeletonConfig, NTUSkeletons

    rng = np.random.default_rng(0)
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("S001C001P001R001A001", "S001C002P003R001A002", "S001C001P002R001A061"):
        write_skeleton(raw / f"{name}.skeleton", [[("7", body(rng))] for _ in range(40)])
    assert main(["lst", "ntu-prepare", "--skeletons", str(raw), "--out", str(tmp_path)]) == 0
    with np.load(tmp_path / "NTU60_CS.npz") as z:  # A061 is not an NTU60 action: left out
        assert z["x_train"].shape == (1, 300, 150) and z["x_test"].shape == (1, 300, 150)
        assert z["y_train"].shape == (1, 60) and z["y_test"][0].argmax() == 1
    ds = NTUSkeletons(NTUSkeletonConfig(data_path=str(tmp_path / "NTU60_CS.npz"), split="test", p_interval=[0.95]))
    vid, x, y = ds[0]
    assert vid == "test_0" and x.shape == (3, 64, 25, 2) and y == 1 and not x[..., 1].any()
    bone = NTUSkeletons(NTUSkeletonConfig(data_path=str(tmp_path / "NTU60_CS.npz"), split="test", modality="bone"))
    assert not bone[0][1][:, :, 20].any()


def test_scores_command_writes_a_stream(registry, tmp_path: Path) -> None:
    from tal.core.cli.main import main

    config = {
        "model": {"name": "ctrgcn", "num_class": 6, "base_channel": 8},
        "data": {"val": {"name": "synthetic-skeleton", "num_per_class": 1, "num_frames": 8}},
        "train": {"eval_batch_size": 4},
    }
    path = tmp_path / "exp.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config))
    model = build_model("ctrgcn", 6, "ntu", base_channel=8)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "joint.npz"
    assert (
        main(["lst", "scores", str(path), "--ckpt", str(tmp_path / "w.pt"), "--out", str(out), "--device", "cpu"]) == 0
    )
    s = read_scores(out)
    assert s.scores.shape == (6, 6) and s.labels.tolist() == list(range(6))
    model.eval()
    from tal.skeleton_lst.data.datasets import SyntheticSkeletonConfig, SyntheticSkeletons

    ds = SyntheticSkeletons(SyntheticSkeletonConfig(num_per_class=1, num_frames=8))
    with torch.no_grad():
        np.testing.assert_allclose(s.scores, model(torch.from_numpy(ds.data)).numpy(), rtol=1e-5, atol=1e-5)


def test_tal_infer_on_an_ntu_skeleton_file(registry, tmp_path: Path, capsys) -> None:
    from test_data import body, write_skeleton

    from tal.core.cli.main import main

    rng = np.random.default_rng(0)
    sample = tmp_path / "S001C001P001R001A023.skeleton"
    write_skeleton(sample, [[("7", body(rng))] for _ in range(30)])
    model = build_model("ctrgcn", 60, "ntu", base_channel=8)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    import yaml

    data = {"name": "ntu-skeleton", "data_path": "unused.npz", "split": "test", "modality": "bone"}
    config = {"model": {"name": "ctrgcn", "num_class": 60, "base_channel": 8}, "data": {"val": data}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    args = ["infer", "--config", str(tmp_path / "exp.yaml"), "--ckpt", str(tmp_path / "w.pt")]
    args += ["--feat", str(sample), "--json", str(tmp_path / "out.json"), "--save-fig", "--gt", "22", "--top", "3"]
    assert main(args) == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert len(result["top"]) == 3 and result["ground_truth"] == 22
    # the same input by hand: the NTU pipeline, the centred 95 % crop resized to 64 frames, bones
    from tal.skeleton_lst.data.ntu_pipeline import preprocess
    from tal.skeleton_lst.data.ntu_skeleton import read_ntu_skeleton
    from tal.skeleton_lst.data.transforms import to_bone, valid_crop_resize, valid_frames
    from tal.skeleton_lst.graphs import BONE_PAIRS

    raw = preprocess(read_ntu_skeleton(sample)).reshape(300, 2, 25, 3).transpose(3, 0, 2, 1)
    x = to_bone(valid_crop_resize(raw, valid_frames(raw), [0.95], 64), BONE_PAIRS["ntu"])
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(x)[None])[0], 0)
    assert result["top"][0]["class"] == int(probs.argmax())
    assert result["top"][0]["score"] == pytest.approx(float(probs.max()), rel=1e-5)
    assert (tmp_path / "out.png").stat().st_size > 1000


def test_release_checkpoint_through_load_model_weights(registry, tmp_path: Path) -> None:
    """`tal eval` / `tal infer` path: a release file into a config with the release's text width."""
    from tal.core.engine.checkpoint import load_model_weights

    release = build_model("lst", 60, "ntu", "bone")
    torch.save(release.state_dict(), tmp_path / "runs-110.pt")
    cfg = load_experiment("skeleton-lst/ntu60-xsub-bone", registry, ["model.text_dim=512"])
    model = registry.build("models", cfg.model)  # wordllama features are 256-d: evaluation only
    assert model.text_bank is None
    assert load_model_weights(model, tmp_path / "runs-110.pt", registry, config=cfg.model) == "release state dict"
    model.eval(), release.eval()
    x = torch.randn(1, 3, 8, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), release(x))
    model.train()
    with pytest.raises(RuntimeError, match="512-d text features"):
        model({"inputs": x, "labels": torch.tensor([0])})


def test_tal_train_and_eval_commands(tmp_path: Path, capsys) -> None:
    import yaml

    from tal.core.cli.main import main

    data = {"name": "synthetic-skeleton", "num_per_class": 1, "num_frames": 8}
    config = {
        "model": {"name": "lst", "num_class": 60, "dataset": "ntu", "base_channel": 8},
        "data": {"train": data, "val": {**data, "seed": 1}},
        "metric": {"name": "recognition", "top_k": [1, 5], "num_classes": 60},
        "train": {
            "epochs": 1,
            "batch_size": 3,
            "eval_batch_size": 6,
            "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
            "scheduler": {"name": "multistep", "milestones": [1]},
            "device": "cpu",
            "progress": False,
            "output_dir": str(tmp_path / "run"),
        },
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) == 0
    assert (tmp_path / "run" / "last.pt").is_file()
    assert main(["eval", str(path), "--ckpt", str(tmp_path / "run" / "last.pt"), "--json"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out[out.index("{") :])
    assert metrics["num_samples"] == 6 and 0.0 <= metrics["top1"] <= 100.0
