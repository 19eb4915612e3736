"""Release config files → tal experiment configs, presets, and `tal actionformer convert`."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from conftest import release_config
from pydantic import ValidationError
from synth_data import tiny_release_config, tiny_thumos, write_set

from tal.core.cli.main import main
from tal.core.config import TrainConfig, load_experiment
from tal.core.engine.optim import build_optimizer, build_scheduler
from tal.core.engine.trainer import Trainer
from tal.core.errors import ConfigError
from tal.core.registry import get_registry
from tal.loc_actionformer import ActionFormer, ActionFormerConfig
from tal.loc_actionformer.modeling.meta_arch import head_empty_classes
from tal.loc_actionformer.release.presets import preset, release_config_path
from tal.loc_actionformer.release.translate import (
    experiment_from_release,
    is_release_config,
    model_config_from_release,
    release_config_dict,
)


def test_detects_release_configs() -> None:
    thumos = release_config("thumos_i3d")
    assert is_release_config(thumos) and is_release_config({"dataset": {}, "model": {}})
    assert not is_release_config(experiment_from_release(thumos))
    assert not is_release_config({"model": {"name": "actionformer"}})


def test_merge_over_the_release_defaults_and_derived_fields() -> None:
    merged = release_config_dict(release_config_path("thumos_i3d"))
    assert merged["model"]["input_dim"] == 2048 and merged["model"]["num_classes"] == 20
    assert merged["model"]["max_seq_len"] == 2304
    assert merged["model"]["train_cfg"]["init_loss_norm"] == 100
    assert merged["model"]["train_cfg"]["droppath"] == 0.1  # default filled in
    assert merged["opt"]["warmup_epochs"] == 5 and merged["opt"]["learning_rate"] == 0.0001
    cfg = model_config_from_release(release_config_path("thumos_i3d"))
    assert cfg.fpn_strides == [1, 2, 4, 8, 16, 32]
    assert cfg.mha_win_sizes == [19] * 6 and cfg.max_div_factor == 32 * 18
    assert cfg.test_cfg.pre_nms_topk == 2000 and cfg.test_cfg.multiclass_nms is True
    assert cfg.test_cfg.voting_thresh == 0.7 and cfg.test_cfg.min_score == 0.001
    assert cfg.train_cfg.clip_grad_l2norm == 1.0 and cfg.train_cfg.dropout == 0.0
    assert model_config_from_release(release_config("thumos_i3d")) == cfg  # a parsed mapping works alike
    assert model_config_from_release(release_config_path("thumos_i3d"), attn_impl="band_mask").attn_impl == "band_mask"
    with pytest.raises(ConfigError, match=r"model\.n_mha_win_sizes .*did you mean 'n_mha_win_size'"):
        model_config_from_release({"model": {"n_mha_win_sizes": 9}})
    with pytest.raises(ValidationError, match="backbone_type"):  # a known key with a value we do not support
        model_config_from_release({"model": {"backbone_type": "conv"}})
    with pytest.raises(ConfigError, match="model_name"):
        model_config_from_release({"model_name": "SomethingElse"})
    with pytest.raises(ConfigError, match="mapping"):
        release_config_dict({"model": None})


def test_thumos_translation() -> None:
    exp = experiment_from_release(release_config("thumos_i3d"), label="thumos")
    train = exp["train"]
    assert train["epochs"] == 30 + 5  # the release trains warmup_epochs on top of epochs
    assert train["scheduler"] == {
        "name": "cosine",
        "warmup_epochs": 5.0,
        "warmup_inclusive": True,
        "milestones": [],
        "milestones_after_warmup": True,
        "gamma": 0.1,
        "eta_min": 1e-8,
    }
    assert train["drop_last"] is True
    assert train["optimizer"] == {"name": "adamw", "lr": 1e-4, "weight_decay": 0.05, "momentum": 0.9}
    assert train["clip_grad_norm"] == 1.0 and train["ema"] == {"enabled": True, "decay": 0.999}
    assert train["batch_size"] == 2 and train["num_workers"] == 4 and train["seed"] == 1234567891
    assert train["output_dir"] == str(Path("./ckpt/") / "thumos") and train["best_metric"] == "average_mAP"
    model = exp["model"]
    assert model["name"] == "actionformer" and model["input_dim"] == 2048 and model["num_classes"] == 20
    assert model["train_cfg"]["head_empty_cls"] == []  # Cliff Diving is trained (the release since May 2022)
    assert model["test_cfg"]["ext_score_file"] is None and model["test_cfg"]["multiclass_nms"] is True
    tr, val = exp["data"]["train"], exp["data"]["val"]
    assert tr["subset"] == ["validation"] and tr["training"] and val["subset"] == ["test"] and not val["training"]
    assert tr["annotation_file"] == "./data/thumos/annotations/thumos14.json"
    assert tr["feature_dir"] == "./data/thumos/i3d_features" and tr["file_prefix"] == ""
    assert (tr["feat_stride"], tr["num_frames"], tr["max_seq_len"], tr["crop_ratio"]) == (4, 16, 2304, [0.9, 1.0])
    # np.linspace(0.3, 0.7, 5) as the release builds it: its second value is not the literal 0.4
    assert exp["metric"] == {
        "name": "detection-map",
        "tiou_thresholds": [0.3, 0.39999999999999997, 0.5, 0.6, 0.7],
        "top_k": [1, 5],
    }
    cfg = load_experiment(exp, get_registry())
    assert cfg.model.max_div_factor == 576 and cfg.data.train.dataset_name == "thumos"


def test_other_datasets() -> None:
    anet = experiment_from_release(release_config("anet_tsp"))
    assert anet["metric"]["tiou_thresholds"] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95]
    assert anet["train"]["epochs"] == 15 and anet["data"]["train"]["file_prefix"] == "v_"
    assert anet["data"]["train"]["default_fps"] == 15 and anet["model"]["train_cfg"]["head_empty_cls"] == []
    ego = experiment_from_release(release_config("ego4d_omnivore_egovlp"))
    assert ego["data"]["train"]["feature_dir"] == ["./data/ego4d/omnivore_features", "./data/ego4d/egovlp_features"]
    assert ego["metric"]["tiou_thresholds"] == [0.1, 0.2, 0.30000000000000004, 0.4, 0.5]
    assert ego["metric"]["top_k"] == [1, 5]
    for exp in (anet, ego):
        load_experiment(exp, get_registry())


def test_epic_empty_classes_are_read_when_the_model_is_built(tmp_path: Path) -> None:
    ann = tmp_path / "epic.json"
    cfg = release_config("epic_slowfast_noun")
    cfg["dataset"]["json_file"] = str(ann)
    cfg["dataset"]["num_classes"] = 4
    exp = experiment_from_release(cfg)  # translated before the annotation file exists
    train_cfg = exp["model"]["train_cfg"]
    assert train_cfg["head_empty_cls"] == [] and train_cfg["head_empty_cls_from"] == str(ann)
    write_set(
        tmp_path, {"P01": {"subset": "training", "steps": 4, "segments": [[1.0, 2.0, 0], [3, 4, 2]]}}, {0: "a", 2: "b"}
    )
    (tmp_path / "ann.json").rename(ann)
    model_cfg = ActionFormerConfig(**{k: v for k, v in exp["model"].items() if k != "name"})
    assert head_empty_classes(model_cfg) == [1, 3]  # classes 1 and 3 have no annotation in the file
    bias = ActionFormer(model_cfg).cls_head.cls_head.conv.bias
    # prior 1e-6 for the empty classes, cls_prior_prob 0.01 for the others
    torch.testing.assert_close(bias, torch.tensor([-math.log(99), -math.log(999999), -math.log(99), -math.log(999999)]))
    ann.unlink()  # e.g. evaluating elsewhere: the initial bias does not matter, the weights replace it
    assert head_empty_classes(model_cfg) == []
    for name in ("thumos_i3d", "anet_tsp", "ego4d_omnivore_egovlp"):
        assert "head_empty_cls_from" not in preset(name)["model"]["train_cfg"]


@pytest.mark.parametrize(
    ("section", "typo", "meant"),
    [
        ("opt", "learnin_rate", "learning_rate"),
        ("loader", "batchsize", "batch_size"),
        ("dataset", "feat_strde", "feat_stride"),
        ("", "outptu_folder", "output_folder"),
        ("train_cfg", "init_loss_nrom", "init_loss_norm"),
        ("test_cfg", "voting_tresh", "voting_thresh"),
    ],
)
def test_typos_in_every_section_are_errors_naming_the_closest_key(
    tmp_path: Path, section: str, typo: str, meant: str
) -> None:
    cfg = release_config("thumos_i3d")
    (cfg[section] if section else cfg)[typo] = 1
    where = f"{section}.{typo}" if section else typo
    with pytest.raises(ConfigError, match=rf"{where} is not a key .*did you mean '{meant}'"):
        experiment_from_release(cfg)
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=rf"typo.yaml \(actionformer-release config\): release config: {where}"):
        load_experiment(path, get_registry())


def test_unsupported_release_options_are_named() -> None:
    thumos = release_config("thumos_i3d")
    cfg = copy.deepcopy(thumos)
    cfg["opt"]["early_stop_epochs"] = 30
    with pytest.raises(ConfigError, match="early_stop_epochs"):
        experiment_from_release(cfg)
    with pytest.raises(ConfigError, match="dataset_name"):
        experiment_from_release({**thumos, "dataset_name": "charades"})
    with pytest.raises(ConfigError, match="model_name"):
        experiment_from_release({**thumos, "model_name": "Other"})


# The release's configs/*.yaml at its latest commit, transcribed by hand: the values in which they
# differ from older versions of the release.
RELEASE_FACTS = {
    "anet_tsp": {
        "max_seq_len": 192,
        "force_upsampling": True,
        "n_mha_win_size": [7, 7, 7, 7, 7, -1],
        "init_loss_norm": 200,
        "loss_weight": 2.0,
        "voting_thresh": 0.9,
        "nms_sigma": 0.75,
        "duration_thresh": 0.001,
        "epochs": 10 + 5,
    },
    "epic_slowfast_verb": {"epochs": 16 + 5, "label_smoothing": 0.0},
    "epic_slowfast_noun": {"epochs": 16 + 5, "label_smoothing": 0.1},
    "thumos_i3d": {"epochs": 30 + 5, "multiclass_nms": True, "ext_score_file": None},
}


@pytest.mark.parametrize("name", sorted(RELEASE_FACTS))
def test_presets_hold_the_release_values(name: str) -> None:
    exp = preset(name)
    model, ds = exp["model"], exp["data"]["train"]
    got = {
        "max_seq_len": model["max_seq_len"],
        "force_upsampling": ds.get("force_upsampling", False),
        "n_mha_win_size": model["n_mha_win_size"],
        **{k: v for k, v in model["train_cfg"].items() if k in ("init_loss_norm", "loss_weight", "label_smoothing")},
        **{k: v for k, v in model["test_cfg"].items()},
        "epochs": exp["train"]["epochs"],
    }
    assert {k: got[k] for k in RELEASE_FACTS[name]} == RELEASE_FACTS[name]
    assert ds["max_seq_len"] == model["max_seq_len"]


def test_presets_are_the_translation_of_the_shipped_files() -> None:
    registry = get_registry()
    names = [n for n in registry.names("presets") if n.startswith("loc-actionformer/")]
    shipped = (
        "thumos_i3d",
        "anet_tsp",
        "anet_i3d",
        "epic_slowfast_verb",
        "epic_slowfast_noun",
        "ego4d_omnivore_egovlp",
    )
    assert names == sorted(f"loc-actionformer/{n}" for n in shipped)
    for name in shipped:
        assert registry.get("presets", f"loc-actionformer/{name}").factory.load() == experiment_from_release(
            release_config(name), label=name
        )
    cfg = load_experiment("loc-actionformer/thumos_i3d", registry, ["data.train.feature_dir=/feats/thumos"])
    assert cfg.data.train.feature_dir == "/feats/thumos" and cfg.data.val.feature_dir == "./data/thumos/i3d_features"
    assert cfg.train.epochs == 35 and cfg.model.test_cfg.multiclass_nms and cfg.model.test_cfg.ext_score_file is None
    anet = preset("anet_i3d")
    assert anet["data"]["train"]["force_upsampling"] and anet["model"]["max_seq_len"] == 192


def test_release_yaml_file_and_convert_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "thumos_i3d.yaml"
    src.write_text(release_config_path("thumos_i3d").read_text())
    assert experiment_from_release(src) == experiment_from_release(release_config("thumos_i3d"), label="thumos_i3d")
    out = tmp_path / "ours.yaml"
    assert main(["actionformer", "convert", str(src), "-o", str(out)]) == 0
    cfg = load_experiment(out, get_registry())
    assert cfg.train.epochs == 35 and cfg.model.n_mha_win_size == 19
    assert main(["actionformer", "convert", str(out)]) == 2
    assert "not a release config" in capsys.readouterr().err
    assert yaml.safe_load(out.read_text())["train"]["output_dir"] == str(Path("./ckpt/") / "thumos_i3d")


def test_release_yaml_runs_through_tal_train_eval_and_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tal train/eval/config validate` read a release YAML as it is (the plugin's config format)."""
    ann = tiny_thumos(tmp_path)
    release = tiny_release_config(
        ann,
        tmp_path / "features",
        devices=["cpu"],
        opt={"learning_rate": 0.001, "epochs": 1, "warmup_epochs": 1, "weight_decay": 0.05},
        loader={"batch_size": 2, "num_workers": 0},
        train_cfg={"clip_grad_l2norm": 1.0},
        output_folder=str(tmp_path / "ckpt"),
    )
    src = tmp_path / "tiny_release.yaml"
    src.write_text(yaml.safe_dump(release))

    cfg = load_experiment(src, get_registry())
    assert cfg.train.epochs == 2 and cfg.model.n_mha_win_size == 5 and cfg.data.val.subset == ["test"]
    assert cfg.train.output_dir == str(tmp_path / "ckpt" / "tiny_release")
    assert load_experiment(src, get_registry(), ["train.epochs=1"]).train.epochs == 1  # overrides use tal's keys

    assert main(["config", "validate", str(src)]) == 0
    assert main(["train", str(src), "--set", "train.epochs=1", "--set", "train.progress=false"]) == 0
    last = tmp_path / "ckpt" / "tiny_release" / "last.pt"
    assert last.is_file()
    capsys.readouterr()
    assert main(["eval", str(src), "--ckpt", str(last), "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["average_mAP"] <= 100

    bad = tmp_path / "bad_release.yaml"
    bad.write_text(yaml.safe_dump({**release, "opt": {**release["opt"], "type": "Lion"}}))
    with pytest.raises(ConfigError, match=r"bad_release.yaml \(actionformer-release config\): opt.type"):
        load_experiment(bad, get_registry())


def schedule(opt: dict, iters_per_epoch: int = 2) -> list[float]:
    """The learning rate of every optimizer step of the run the translated ``opt`` section describes."""
    train = TrainConfig(**experiment_from_release({**release_config("thumos_i3d"), "opt": opt})["train"])
    optimizer = build_optimizer(torch.nn.Linear(1, 1), train.optimizer)
    sched = build_scheduler(optimizer, train.scheduler, train.epochs, iters_per_epoch, train.optimizer.lr)
    lrs = []
    for _ in range(train.epochs * iters_per_epoch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        sched.step()
    return lrs


# (1 + cos(pi * k / 6)) / 2 for k = 1, 2, 4, 5
C1, C2, C4, C5 = 0.9330127018922193, 0.75, 0.25, 0.0669872981077807


def test_warmup_ramp_then_cosine_as_the_release() -> None:
    # 3 epochs + 2 of warmup, 2 steps each: W = 4 warmup steps reach the base lr at their last step
    # (lr * t / (W - 1)), then cosine over the 6 steps left towards 1e-8
    got = schedule({"learning_rate": 0.1, "epochs": 3, "warmup_epochs": 2})
    expected = [0.0, 0.1 / 3, 0.2 / 3, 0.1, 0.1, 0.1 * C1, 0.1 * C2, 0.05, 0.1 * C4, 0.1 * C5]
    assert got == pytest.approx(expected, abs=1e-8)


def test_multistep_milestones_count_from_the_end_of_warmup() -> None:
    # schedule_steps [1] epoch = 2 steps after the 4 warmup steps: the lr halves at step 6, not at step 2
    opt = {"learning_rate": 0.1, "epochs": 3, "warmup_epochs": 2, "schedule_type": "multistep"}
    got = schedule({**opt, "schedule_steps": [1], "schedule_gamma": 0.5})
    assert got == pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05], abs=1e-12)


def test_without_warmup_torch_plain_schedulers() -> None:
    # warmup: false: `epochs` epochs (no warmup added), CosineAnnealingLR(6 steps) to 0 ...
    cosine = schedule({"learning_rate": 0.1, "epochs": 3, "warmup": False, "warmup_epochs": 2})
    assert cosine == pytest.approx([0.1, 0.1 * C1, 0.1 * C2, 0.05, 0.1 * C4, 0.1 * C5], abs=1e-12)
    # ... or MultiStepLR(milestones [2 steps], gamma=schedule_gamma)
    opt = {"learning_rate": 0.1, "epochs": 3, "warmup": False, "schedule_type": "multistep"}
    multistep = schedule({**opt, "schedule_steps": [1], "schedule_gamma": 0.5})
    assert multistep == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.05, 0.05], abs=1e-12)


def test_training_drops_the_last_incomplete_batch(tmp_path: Path) -> None:
    ann = tiny_thumos(tmp_path)  # 6 training videos
    release = tiny_release_config(ann, tmp_path / "features", loader={"batch_size": 4, "num_workers": 0})
    cfg = load_experiment(release, get_registry())
    assert cfg.train.drop_last is True
    model = get_registry().build("models", cfg.model)
    train_set = get_registry().build("datasets", cfg.data.train)
    trainer = Trainer(model, train_set, None, None, cfg.train.model_copy(update={"device": "cpu"}), progress=False)
    assert len(train_set) == 6 and trainer.train_loader is not None and len(trainer.train_loader) == 1
