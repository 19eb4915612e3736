"""Training through tal-core's Trainer and CLI: losses, exact resume, checkpoints, NMS integration."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_config
from synth_data import tiny_experiment

import tal.core.engine.trainer as trainer_mod
from tal.core.cli.main import main
from tal.core.config import load_experiment
from tal.core.engine.checkpoint import load_model_weights
from tal.core.engine.trainer import Trainer
from tal.core.registry import get_registry
from tal.loc_actionformer import ActionFormer

pytest.importorskip("tal.cuda_ops")  # the default NMS, used when evaluating


def build(exp: dict) -> tuple[Trainer, ActionFormer]:
    registry = get_registry()
    cfg = load_experiment(exp, registry)
    torch.manual_seed(0)
    trainer = Trainer.from_experiment(cfg, registry, progress=False)
    return trainer, trainer.model


class Stop(Exception):
    pass


def test_resume_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = tiny_experiment(tmp_path / "a", epochs=3, eval_every=3)
    full, full_model = build(exp)
    metrics = full.fit()
    assert 0 <= metrics["average_mAP"] <= 100
    assert full_model.loss_normalizer != 2000.0  # moved away from init_loss_norm

    exp_b = {**exp, "train": {**exp["train"], "output_dir": str(tmp_path / "b")}}
    first, _ = build(exp_b)
    save = trainer_mod.save_checkpoint

    def save_then_stop(state: dict, path: Path) -> Path:
        out = save(state, path)
        if state["epoch"] == 1:
            raise Stop
        return out

    monkeypatch.setattr(trainer_mod, "save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        first.fit()
    monkeypatch.setattr(trainer_mod, "save_checkpoint", save)
    resumed, resumed_model = build(exp_b)
    resumed.resume(tmp_path / "b" / "last.pt")
    assert resumed_model.loss_normalizer == first.model.loss_normalizer  # restored from the checkpoint
    resumed.fit()
    assert resumed_model.loss_normalizer == full_model.loss_normalizer
    for (k, a), b in zip(full_model.state_dict().items(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert full.ema is not None and resumed.ema is not None
    for a, b in zip(full.ema.module.state_dict().values(), resumed.ema.module.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_loss_normalizer_travels_in_metadata_only() -> None:
    model = ActionFormer(tiny_config())
    keys = list(model.state_dict())
    model.loss_normalizer = 123.25
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert list(state) == keys  # the release's keys, nothing added
    other = ActionFormer(tiny_config())
    other.load_state_dict(state, strict=True)
    assert other.loss_normalizer == 123.25
    fresh = ActionFormer(tiny_config())
    fresh.load_state_dict(dict(state), strict=True)  # a plain dict (e.g. a release checkpoint) has no metadata
    assert fresh.loss_normalizer == 2000.0


def test_cli_train_eval_and_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = tiny_experiment(tmp_path, epochs=1)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(exp))
    assert main(["train", str(cfg)]) == 0
    last = tmp_path / "run" / "last.pt"
    assert main(["eval", str(cfg), "--ckpt", str(last), "--json"]) == 0
    assert '"average_mAP"' in capsys.readouterr().out
    # a tal checkpoint loads (EMA weights first) as a release checkpoint would
    ckpt = torch.load(last, weights_only=True)
    model = ActionFormer(tiny_config(test_cfg={"max_seg_num": 50, "pre_nms_topk": 200}))
    assert load_model_weights(model, last) == "ema"
    for a, b in zip(model.state_dict().values(), ckpt["ema"]["module"].values(), strict=True):
        assert torch.equal(a, b)
    release = {
        "epoch": 0,
        "state_dict": {f"module.{k}": v for k, v in ckpt["model"].items()},
        "state_dict_ema": {f"module.{k}": v for k, v in ckpt["ema"]["module"].items()},
    }
    torch.save(release, tmp_path / "epoch_000.pth.tar")
    other = ActionFormer(tiny_config(test_cfg={"max_seg_num": 50, "pre_nms_topk": 200}))
    assert load_model_weights(other, tmp_path / "epoch_000.pth.tar", get_registry()) == "state_dict_ema"
    batch = {"features": [torch.randn(16, 60)], "fps": [30.0], "feat_stride": [4], "num_frames": [16], "duration": [9]}
    with torch.no_grad():
        a, b = model.eval()(batch)[0], other.eval()(batch)[0]
    assert torch.equal(a.segments, b.segments) and torch.equal(a.labels, b.labels)


@pytest.mark.parametrize(("method", "multiclass"), [("soft", True), ("soft", False), ("hard", True)])
def test_default_nms_is_tal_cuda_ops(method: str, multiclass: bool) -> None:
    from tal.cuda_ops import batched_nms

    tc = {"nms_method": method, "multiclass_nms": multiclass, "max_seg_num": 20, "voting_thresh": 0.7}
    model = ActionFormer(tiny_config(test_cfg=tc)).eval()
    feats = torch.randn(16, 64)
    batch = {"features": [feats], "fps": [30.0], "feat_stride": [4], "num_frames": [16], "duration": [9.0]}
    with torch.no_grad():
        (pred,) = model(batch)
        (cand,) = model.detect([feats])
    segs, scores, labels = batched_nms(
        cand["segments"], cand["scores"], cand["labels"], 0.1, 0.01, 20, method == "soft", multiclass, 0.5, 0.7
    )
    assert len(pred) == len(scores) <= 20
    assert torch.equal(pred.labels, labels)
    torch.testing.assert_close(pred.scores, scores.double())
    torch.testing.assert_close(pred.segments, ((segs.double() * 4 + 8) / 30).clamp(0, 9.0))
