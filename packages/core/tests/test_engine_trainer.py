"""The Trainer: clipping, bf16 autocast, CSV logs, best checkpoint, exact resume, EMA evaluation."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from test_engine_support import FrameAccuracy, ToySegDataset

from tal.core.baselines import FrameMLP
from tal.core.config import TrainConfig
from tal.core.engine import Trainer, load_checkpoint
from tal.core.engine.run_logs import CSVLogger, flatten_metrics, progress_enabled
from tal.core.engine.trainer import move_to
from tal.core.errors import ConfigError
from tal.core.types import Segments


def make_model(seed: int = 0, dropout: float = 0.0) -> FrameMLP:
    torch.manual_seed(seed)
    return FrameMLP(input_dim=8, num_classes=3, hidden_dim=16, dropout=dropout)


def config(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {"epochs": 2, "batch_size": 2, "progress": False, "optimizer": {"lr": 0.01}}
    base.update(kw)
    return TrainConfig(**base)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def flat_params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# -- single steps ---------------------------------------------------------------------------------
@pytest.mark.parametrize("clip", [None, 1e-3])
def test_gradient_clipping_bounds_the_update(tmp_path: Path, clip: float | None) -> None:
    # SGD, lr 1, no momentum/decay, constant schedule: the update is exactly the (clipped) gradient.
    cfg = config(
        optimizer={"name": "sgd", "lr": 1.0, "momentum": 0.0},
        scheduler={"name": "constant"},
        clip_grad_norm=clip,
    )
    ds = ToySegDataset(num_videos=4)
    trainer = Trainer(make_model(), ds, config=cfg, output_dir=tmp_path)
    before = flat_params(trainer.model)
    stats = trainer.train_step(ds.collate([ds[0], ds[1]]))
    moved = float((flat_params(trainer.model) - before).norm())
    if clip is None:
        assert "grad_norm" not in stats
        assert moved > 1e-2
    else:
        assert stats["grad_norm"] > 10 * clip  # the raw gradient was much larger ...
        assert moved == pytest.approx(clip, rel=1e-3)  # ... the step was clipped to the bound


def test_bf16_autocast_on_cpu_gives_finite_losses_close_to_fp32(tmp_path: Path) -> None:
    seen: dict[bool, set[torch.dtype]] = {}

    class Recording(FrameMLP):
        def logits(self, features: torch.Tensor) -> torch.Tensor:
            out = super().logits(features)
            seen.setdefault(self.amp_flag, set()).add(out.dtype)
            return out

    ds = ToySegDataset(num_videos=4)
    batches = [ds.collate([ds[i], ds[i + 1]]) for i in (0, 2, 0, 2)]
    losses: dict[bool, list[float]] = {}
    for amp in (False, True):
        torch.manual_seed(0)
        model = Recording(8, 3, 16)
        model.amp_flag = amp
        trainer = Trainer(model, ds, config=config(amp=amp, device="cpu"), output_dir=tmp_path)
        losses[amp] = [trainer.train_step(b)["loss"] for b in batches]
    assert seen[False] == {torch.float32}
    assert seen[True] == {torch.bfloat16}  # autocast really ran in bf16
    assert all(torch.isfinite(torch.tensor(losses[True])))
    assert losses[True] == pytest.approx(losses[False], rel=3e-2)
    assert losses[True] != losses[False]
    assert losses[True][-1] < losses[True][0]  # it still learns


def test_non_finite_loss_stops_training(tmp_path: Path) -> None:
    class Exploding(FrameMLP):
        def forward(self, batch: Any) -> Any:
            out = super().forward(batch)
            return {"loss": out["loss"] * float("nan")} if self.training else out

    ds = ToySegDataset(num_videos=2)
    trainer = Trainer(Exploding(8, 3, 16), ds, config=config(), output_dir=tmp_path)
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        trainer.train_step(ds.collate([ds[0]]))


# -- whole runs -----------------------------------------------------------------------------------
def test_csv_log_contents(tmp_path: Path) -> None:
    cfg = config(epochs=3, eval_every=2, scheduler={"name": "multistep", "milestones": [1]}, clip_grad_norm=10.0)
    ds, val = ToySegDataset(num_videos=6), ToySegDataset(num_videos=3, seed=1)
    trainer = Trainer(make_model(), ds, val, FrameAccuracy(), cfg, tmp_path)
    final = trainer.fit()
    rows = read_csv(tmp_path / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert [r["step"] for r in rows] == ["3", "6", "9"]  # 6 videos / batch 2
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.01, 0.001, 0.001])
    assert all(float(r["train/loss"]) > 0 and float(r["train/grad_norm"]) > 0 for r in rows)
    # evaluated every 2 epochs and after the last one
    assert [r["val/acc"] != "" for r in rows] == [False, True, True]
    assert float(rows[-1]["val/acc"]) == final["acc"]
    assert rows[-1]["val/total"] == str(float(3 * 12))


def test_best_checkpoint_follows_best_metric(tmp_path: Path) -> None:
    scores = iter([0.3, 0.7, 0.5])
    snapshots: list[dict[str, torch.Tensor]] = []

    class Scripted(FrameAccuracy):
        def compute(self) -> dict[str, Any]:
            snapshots.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
            return {"score": next(scores), **super().compute()}

    cfg = config(epochs=3, best_metric="score")
    trainer = Trainer(make_model(), ToySegDataset(4), ToySegDataset(2, seed=1), Scripted(), cfg, tmp_path)
    trainer.fit()
    best = load_checkpoint(tmp_path / "best.pt")
    last = load_checkpoint(tmp_path / "last.pt")
    assert best["epoch"] == 2 and best["best"] == {"metric": "score", "value": 0.7, "epoch": 2}
    assert last["epoch"] == 3 and last["best"]["value"] == 0.7
    for k, v in best["model"].items():
        assert torch.equal(v, snapshots[1][k])
    assert not torch.equal(best["model"]["net.0.weight"], last["model"]["net.0.weight"])
    assert sorted(os.listdir(tmp_path)) == ["best.pt", "last.pt", "metrics.csv"]


def test_unknown_best_metric_is_a_config_error(tmp_path: Path) -> None:
    cfg = config(epochs=1, best_metric="mAP")
    trainer = Trainer(make_model(), ToySegDataset(2), ToySegDataset(2), FrameAccuracy(), cfg, tmp_path)
    with pytest.raises(ConfigError, match=r"mAP.*acc"):
        trainer.fit()


def test_evaluation_uses_ema_weights(tmp_path: Path) -> None:
    cfg = config(epochs=2, ema={"enabled": True, "decay": 0.5}, optimizer={"lr": 0.05})
    val = ToySegDataset(5, seed=1)
    trainer = Trainer(make_model(), ToySegDataset(6), val, FrameAccuracy(), cfg, tmp_path)
    trainer.fit()
    assert trainer.eval_model() is trainer.ema.module
    assert not torch.equal(flat_params(trainer.ema.module), flat_params(trainer.model))

    def accuracy_of(model: torch.nn.Module) -> dict[str, Any]:
        metric = FrameAccuracy()
        model.eval()
        with torch.no_grad():
            for i in range(len(val)):
                b = val.collate([val[i]])
                metric.update(model(b), b["targets"], b["video_ids"])
        return metric.compute()

    assert trainer.evaluate() == accuracy_of(trainer.ema.module)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["ema"]["updates"] == trainer.global_step == 6


class CrashAfter(FrameMLP):
    """Raises on the ``n``-th training forward, like a job killed mid-epoch."""

    def __init__(self, n: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n = n

    def forward(self, batch: Any) -> Any:
        if self.training:
            self.n -= 1
            if self.n < 0:
                raise KeyboardInterrupt("simulated crash")
        return super().forward(batch)


@pytest.mark.parametrize("workers", [0, 2])
def test_exact_resume(tmp_path: Path, workers: int) -> None:
    # Dropout, augmentation noise (torch RNG in the main process, NumPy RNG in workers), warmup+cosine,
    # AdamW, clipping and EMA all depend on state that a resume must restore.
    augment = "torch" if workers == 0 else "numpy"
    cfg = config(
        epochs=4,
        checkpoint_every=2,
        num_workers=workers,
        optimizer={"name": "adamw", "lr": 0.02, "weight_decay": 0.01},
        scheduler={"name": "cosine", "warmup_epochs": 1},
        clip_grad_norm=1.0,
        ema={"enabled": True, "decay": 0.8},
        best_metric="acc",
    )

    def datasets() -> tuple[ToySegDataset, ToySegDataset]:
        return ToySegDataset(6, augment=augment, variable_length=True), ToySegDataset(3, seed=1)

    straight = Trainer(make_model(dropout=0.3), *datasets(), FrameAccuracy(), cfg, tmp_path / "a")
    straight.fit()

    # 3 steps per epoch: crash in epoch 4, after epoch 3 was logged but only epoch 2 was checkpointed
    torch.manual_seed(0)
    crashing = CrashAfter(10, 8, 3, 16, dropout=0.3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(crashing, *datasets(), FrameAccuracy(), cfg, tmp_path / "b").fit()
    assert len(read_csv(tmp_path / "b" / "metrics.csv")) == 3
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 2

    resumed = Trainer(make_model(seed=123, dropout=0.3), *datasets(), FrameAccuracy(), cfg, tmp_path / "b")
    resumed.resume(tmp_path / "b" / "last.pt")
    assert resumed.epoch == 2 and resumed.global_step == 6
    resumed.fit()

    for (name, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    for p, q in zip(straight.ema.module.parameters(), resumed.ema.module.parameters(), strict=True):
        assert torch.equal(p, q)
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()
    a, b = load_checkpoint(tmp_path / "a" / "best.pt"), load_checkpoint(tmp_path / "b" / "best.pt")
    assert a["best"] == b["best"]


def test_resume_without_rng_restore_would_diverge(tmp_path: Path, caplog) -> None:
    """Guards the exact-resume test: with dropout and noise, skipping the RNG restore changes the result."""
    cfg = config(epochs=2, checkpoint_every=1)
    ds = ToySegDataset(4, augment="torch")
    straight = Trainer(make_model(dropout=0.3), ds, config=cfg, output_dir=tmp_path / "a")
    straight.fit()
    partial = Trainer(
        make_model(dropout=0.3), ds, config=cfg.model_copy(update={"epochs": 1}), output_dir=tmp_path / "b"
    )
    partial.fit()
    ckpt = load_checkpoint(tmp_path / "b" / "last.pt")
    ckpt["rng"] = []  # as if the RNG state were lost: re-seeded with a warning
    torch.save(ckpt, tmp_path / "b" / "norng.pt")
    resumed = Trainer(make_model(dropout=0.3), ds, config=cfg, output_dir=tmp_path / "b")
    resumed.resume(tmp_path / "b" / "norng.pt")
    assert "random state re-seeded" in caplog.text
    resumed.fit()
    assert not torch.equal(flat_params(straight.model), flat_params(resumed.model))


def test_resume_rejects_foreign_checkpoint(tmp_path: Path) -> None:
    torch.save({"weights": torch.ones(1)}, tmp_path / "x.pt")
    trainer = Trainer(make_model(), ToySegDataset(2), config=config(), output_dir=tmp_path)
    with pytest.raises(Exception, match="not a tal training checkpoint"):
        trainer.resume(tmp_path / "x.pt")


# -- logging helpers ------------------------------------------------------------------------------
def test_csv_logger_resume_drops_rows_after_checkpoint(tmp_path: Path) -> None:
    log = CSVLogger(tmp_path / "m.csv")
    for e in (1, 2, 3):
        log.log({"epoch": e, "loss": 1.0 / e})
    log2 = CSVLogger(tmp_path / "m.csv", resume_epoch=2)
    log2.log({"epoch": 3, "loss": 0.25, "acc": 0.5})
    rows = read_csv(tmp_path / "m.csv")
    assert [(r["epoch"], r["loss"], r["acc"]) for r in rows] == [
        ("1", "1.0", ""),
        ("2", "0.5", ""),
        ("3", "0.25", "0.5"),
    ]
    CSVLogger(tmp_path / "m.csv").log({"epoch": 1})  # a fresh run replaces the file
    assert len(read_csv(tmp_path / "m.csv")) == 1


def test_flatten_metrics_keeps_scalar_leaves() -> None:
    import numpy as np

    metrics = {"mAP": np.float64(0.5), "per_iou": {"0.5": 0.6, "0.7": torch.tensor(0.4)}, "curve": [1, 2], "n": 3}
    assert flatten_metrics(metrics) == {"mAP": 0.5, "per_iou/0.5": 0.6, "per_iou/0.7": pytest.approx(0.4), "n": 3.0}


def test_progress_switch() -> None:
    assert progress_enabled(True, force=True) and not progress_enabled(True, force=False)
    assert not progress_enabled(False)  # pytest captures stdout, so never a terminal here either


def test_forced_progress_bar_renders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trainer = Trainer(make_model(), ToySegDataset(2), config=config(epochs=1), output_dir=tmp_path, progress=True)
    trainer.fit()
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err


def test_move_to_handles_containers_and_leaves_records_alone() -> None:
    seg = Segments(torch.zeros(1, 2), torch.zeros(1, dtype=torch.int64), torch.ones(1))
    batch = {"x": torch.ones(2, dtype=torch.bfloat16), "l": [torch.zeros(1)], "t": (seg,), "ids": ["a"]}
    moved = move_to(batch, "cpu")
    assert moved["x"].dtype == torch.bfloat16 and moved["t"][0] is seg and moved["ids"] == ["a"]
    preds = move_to(
        [{"scores": torch.ones(1, dtype=torch.bfloat16)}, seg], "cpu", upcast_half=True, dataclasses_too=True
    )
    assert preds[0]["scores"].dtype == torch.float32
    assert preds[1] is not seg and torch.equal(preds[1].scores, seg.scores)


def test_metric_is_told_the_dataset_classes(tmp_path: Path) -> None:
    class Named(ToySegDataset):
        class_names = ("background", "cut", "stir")

    class NeedsNames(FrameAccuracy):
        names: list[str] | None = None

        def set_class_names(self, names: list[str]) -> None:
            self.names = names

        def update(self, *args: Any) -> None:
            assert self.names is not None, "set_class_names must come before the first update"
            super().update(*args)

    metric = NeedsNames()
    Trainer(make_model(), config=config(), output_dir=tmp_path).evaluate(Named(2), metric)
    assert metric.names == ["background", "cut", "stir"]


def test_resume_keeps_best_unless_best_metric_changes(tmp_path: Path) -> None:
    data = (ToySegDataset(4), ToySegDataset(2, seed=1))
    first = Trainer(make_model(), *data, FrameAccuracy(), config(epochs=1, best_metric="acc"), tmp_path)
    first.fit()
    saved = dict(first.best)
    same = Trainer(make_model(), *data, FrameAccuracy(), config(epochs=1, best_metric="acc"), tmp_path)
    same.resume(tmp_path / "last.pt")
    assert same.best == saved and saved["epoch"] == 1
    other = Trainer(make_model(), *data, FrameAccuracy(), config(epochs=1, best_metric="correct"), tmp_path)
    other.resume(tmp_path / "last.pt")
    assert other.best == {"metric": "correct", "value": None, "epoch": None}


def test_tensorboard_scalars(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = config(epochs=2, tensorboard=True)
    trainer = Trainer(make_model(), ToySegDataset(4), ToySegDataset(2, seed=1), FrameAccuracy(), cfg, tmp_path)
    final = trainer.fit()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "val/acc"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    val = events.Scalars("val/acc")
    assert [e.step for e in val] == [2, 4] and val[-1].value == pytest.approx(final["acc"])
