"""Atomic checkpoint writes and safe loading."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from tal.core.engine.checkpoint import (
    load_checkpoint,
    load_model_weights,
    model_state_from_checkpoint,
    save_checkpoint,
)
from tal.core.errors import DataFormatError


def test_save_then_load(tmp_path) -> None:
    state = {"epoch": 3, "model": {"w": torch.arange(4.0)}, "best": {"metric": "acc", "value": 0.5}}
    save_checkpoint(state, tmp_path / "sub" / "last.pt")
    loaded = load_checkpoint(tmp_path / "sub" / "last.pt")
    assert loaded["epoch"] == 3 and loaded["best"] == {"metric": "acc", "value": 0.5}
    assert torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert os.listdir(tmp_path / "sub") == ["last.pt"]


def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(1000)}, path)
    real_save = torch.save

    def partial_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")  # some bytes reach the file ...
        raise OSError("disk full")  # ... then the write dies

    monkeypatch.setattr(torch, "save", partial_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2, "w": torch.zeros(1000)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.ones(1000))
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_crash_during_rename_keeps_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def failing_replace(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


class Payload:
    """Not an allowed type under weights_only."""


def test_load_refuses_arbitrary_objects(tmp_path) -> None:
    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(DataFormatError, match=r"evil\.pt"):
        load_checkpoint(tmp_path / "evil.pt")


def test_load_missing_and_truncated_files(tmp_path) -> None:
    with pytest.raises(DataFormatError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "trunc.pt").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataFormatError, match=r"trunc\.pt"):
        load_checkpoint(tmp_path / "trunc.pt")


def test_model_state_sources() -> None:
    w = {"weight": torch.ones(1, 1), "bias": torch.zeros(1)}
    e = {"weight": 2 * torch.ones(1, 1), "bias": torch.zeros(1)}
    assert model_state_from_checkpoint({"model": w, "ema": {"module": e}})[1] == "ema"
    assert model_state_from_checkpoint({"model": w, "ema": {"module": e}}, prefer_ema=False)[1] == "model"
    assert model_state_from_checkpoint({"model": w, "ema": None})[1] == "model"
    assert set(model_state_from_checkpoint({f"module.{k}": v for k, v in w.items()})[0]) == {"weight", "bias"}
    with pytest.raises(DataFormatError, match="no model weights found"):
        model_state_from_checkpoint({"epoch": 1})
    with pytest.raises(DataFormatError, match="no model weights found"):  # a release layout core does not know
        model_state_from_checkpoint({"state_dict_ema": {f"module.{k}": v for k, v in e.items()}})


def test_load_model_weights_prefers_ema(tmp_path) -> None:
    model = nn.Linear(1, 1)
    w = {"weight": torch.ones(1, 1), "bias": torch.zeros(1)}
    e = {"weight": 2 * torch.ones(1, 1), "bias": torch.zeros(1)}
    save_checkpoint({"model": w, "ema": {"module": e, "decay": 0.9, "updates": 1}}, tmp_path / "c.pt")
    assert load_model_weights(model, tmp_path / "c.pt") == "ema"
    assert model.weight.item() == 2.0
    with pytest.raises(DataFormatError, match="do not fit"):
        load_model_weights(nn.Linear(2, 1), tmp_path / "c.pt")
