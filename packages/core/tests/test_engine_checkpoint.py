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


def test_empty_file_says_it_is_empty(tmp_path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"empty.pt: not a readable checkpoint: the file is empty \(0 bytes\)"):
        load_checkpoint(tmp_path / "empty.pt")


def test_pickled_objects_are_refused_without_advising_weights_only_false(tmp_path) -> None:
    import argparse

    torch.save({"model": argparse.Namespace(a=1)}, tmp_path / "obj.pt")  # not loadable with weights_only
    with pytest.raises(DataFormatError) as info:
        load_checkpoint(tmp_path / "obj.pt")
    message = str(info.value)
    assert "weights_only=False" not in message and "weights_only" not in message
    assert "save only the state dict" in message


class Head(nn.Module):
    def __init__(self, input_dim: int, num_classes: int, layers: int = 3) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(input_dim, input_dim) for _ in range(layers))
        self.cls = nn.Linear(input_dim, num_classes)


def test_a_shape_mismatch_is_summarised_with_the_config_field_to_blame(tmp_path) -> None:
    from pydantic import BaseModel

    class HeadConfig(BaseModel):
        input_dim: int = 8
        num_classes: int = 20

    save_checkpoint({"model": Head(8, 97).state_dict()}, tmp_path / "c.pt")
    with pytest.raises(DataFormatError) as info:
        load_model_weights(Head(8, 20), tmp_path / "c.pt", config=HeadConfig())
    message = str(info.value)
    assert "2 tensors differ in shape" in message
    assert "cls.weight: model (20, 8), checkpoint (97, 8)" in message
    assert "likely cause: model.num_classes is 20 here, the checkpoint has 97" in message
    assert len(message.splitlines()) == 1


def test_many_missing_and_unexpected_keys_are_counted_not_listed(tmp_path) -> None:
    save_checkpoint({"model": Head(4, 2, layers=40).state_dict()}, tmp_path / "big.pt")
    with pytest.raises(DataFormatError) as info:
        load_model_weights(Head(4, 2, layers=1), tmp_path / "big.pt")
    message = str(info.value)
    assert "78 checkpoint keys are not in the model (blocks.1.weight, blocks.1.bias" in message
    assert "and 73 more" in message and len(message) < 600


def test_a_model_may_adapt_a_checkpoint_before_it_is_checked(tmp_path) -> None:
    class Adapting(nn.Linear):
        def adapt_checkpoint_state(self, state):
            return {k: v for k, v in state.items() if k != "extra"}

    save_checkpoint({"model": {**nn.Linear(2, 1).state_dict(), "extra": torch.zeros(3)}}, tmp_path / "c.pt")
    assert load_model_weights(Adapting(2, 1), tmp_path / "c.pt") == "model"
    with pytest.raises(DataFormatError, match="1 checkpoint keys are not in the model"):
        load_model_weights(nn.Linear(2, 1), tmp_path / "c.pt")
