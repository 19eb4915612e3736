"""The frame-mlp baseline model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from tal.core import baselines
from tal.core.baselines import FrameMLP, FrameMLPConfig
from tal.core.config import load_experiment
from tal.core.protocols import Model
from tal.core.registry import Registry


def batch(lengths: list[int], c: int = 4, k: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    t_max = max(lengths)
    features = torch.randn(len(lengths), c, t_max, generator=g)
    mask = torch.zeros(len(lengths), 1, t_max, dtype=torch.bool)
    labels = torch.full((len(lengths), t_max), -100)
    targets = []
    for i, t in enumerate(lengths):
        mask[i, 0, :t] = True
        y = torch.randint(0, k, (t,), generator=g)
        labels[i, :t] = y
        targets.append(y)
    return {"video_ids": [f"v{i}" for i in range(len(lengths))], "features": features, "mask": mask,
            "labels": labels, "targets": targets}  # fmt: skip


def test_training_loss_is_masked_cross_entropy() -> None:
    torch.manual_seed(0)
    model = FrameMLP(4, 3, hidden_dim=8)
    b = batch([5, 3])
    b["features"][1, :, 3:] = 1e4  # padding must not matter
    out = model(b)
    assert isinstance(model, Model) and set(out) == {"loss"}
    logits = model.logits(b["features"])
    manual = torch.cat(
        [F.cross_entropy(logits[0, :, :5].T, b["targets"][0], reduction="none"),
         F.cross_entropy(logits[1, :, :3].T, b["targets"][1], reduction="none")]
    ).mean()  # fmt: skip
    torch.testing.assert_close(out["loss"], manual)
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_labels_fall_back_to_targets_and_mask_is_applied() -> None:
    torch.manual_seed(0)
    model = FrameMLP(4, 3, hidden_dim=8)
    b = batch([5, 3])
    with_labels = model(b)["loss"]
    no_labels = {k: v for k, v in b.items() if k != "labels"}
    torch.testing.assert_close(model(no_labels)["loss"], with_labels)
    b2 = dict(b, labels=b["labels"].clone())
    b2["labels"][1, 3:] = 0  # labels on padded steps are ignored because of the mask
    torch.testing.assert_close(model(b2)["loss"], with_labels)


def test_nothing_labelled_gives_zero_loss() -> None:
    model = FrameMLP(4, 3)
    b = batch([4])
    b["labels"][:] = -100
    loss = model(b)["loss"]
    assert loss.item() == 0.0
    loss.backward()


def test_eval_returns_argmax_labels_per_video() -> None:
    torch.manual_seed(0)
    model = FrameMLP(4, 3, hidden_dim=8).eval()
    b = batch([5, 3])
    preds = model(b)
    assert [p.shape for p in preds] == [(5,), (3,)]
    assert all(p.dtype == torch.int64 for p in preds)
    logits = model.logits(b["features"])
    assert torch.equal(preds[1], logits[1, :, :3].argmax(0))


def test_wrong_feature_width_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"\(B, 4, T\)"):
        FrameMLP(4, 3)(batch([3], c=5))


def test_register_and_build_from_config() -> None:
    reg = Registry()
    baselines.register(reg)
    assert reg.names("models") == ["frame-classifier", "frame-mlp"]
    cfg = FrameMLPConfig(input_dim=6, num_classes=4, hidden_dim=10, dropout=0.1)
    model = reg.build("models", cfg)
    assert isinstance(model, FrameMLP) and model.net[0].in_channels == 6 and model.net[-1].out_channels == 4
    with pytest.raises(ValidationError):
        FrameMLPConfig(input_dim=6, num_classes=4, hidden=3)
    with pytest.raises(ValidationError):
        FrameMLPConfig(num_classes=4)


def test_frame_mlp_in_an_experiment_config() -> None:
    reg = Registry()
    baselines.register(reg)
    cfg = load_experiment({"model": {"name": "frame-mlp", "input_dim": 2048, "num_classes": 48}}, reg)
    assert cfg.model.hidden_dim == 256 and cfg.model.name == "frame-mlp"
