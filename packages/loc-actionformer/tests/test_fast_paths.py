"""Correctness of the fast paths on the CPU: torch.compile, bf16 autocast through the Trainer, chunked MLP,
copy-free padding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from synth_data import tiny_experiment

from tal.core.config import load_experiment
from tal.core.engine.trainer import Trainer
from tal.core.registry import get_registry
from tal.core.types import Segments
from tal.loc_actionformer import ActionFormer
from tal.loc_actionformer.modeling.blocks import TransformerBlock, local_attention_blocked, local_attention_reference


def small_config(**kw):
    return tiny_config(
        max_seq_len=16, backbone_arch=(1, 1, 1), regression_range=[(0, 4), (4, 10000)], n_mha_win_size=3, **kw
    )


def test_compiled_blocked_attention_matches_the_reference() -> None:
    q, k, v = (torch.randn(2, 4, 40, 8) for _ in range(3))
    key_mask = torch.ones(2, 40, dtype=torch.bool)
    key_mask[1, 30:] = False
    compiled = torch.compile(local_attention_blocked, backend="inductor")
    torch.testing.assert_close(compiled(q, k, v, key_mask, 2), local_attention_reference(q, k, v, key_mask, 2))


def test_compiled_network_trains_and_detects_like_eager() -> None:
    torch.manual_seed(0)
    eager = ActionFormer(small_config(train_cfg={"droppath": 0.0}, test_cfg={"nms_method": "none"}))
    compiled = ActionFormer(small_config(train_cfg={"droppath": 0.0}, test_cfg={"nms_method": "none"}))
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_network(backend="aot_eager")
    batch = {
        "features": [torch.randn(16, 16), torch.randn(16, 12)],
        "segments": [torch.tensor([[2.0, 9.0]]), torch.tensor([[1.0, 4.0]])],
        "labels": [torch.tensor([0]), torch.tensor([2])],
    }
    losses = [m.train()(batch)["loss"] for m in (eager, compiled)]
    torch.testing.assert_close(losses[1], losses[0])
    for loss in losses:
        loss.backward()
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        assert b.grad is not None, name
        torch.testing.assert_close(b.grad, a.grad, atol=1e-6, rtol=1e-4)
    meta = {"fps": [30.0, 30.0], "feat_stride": [4, 4], "num_frames": [16, 16], "duration": [3.0, 2.0]}
    with torch.no_grad():
        d_eager = eager.eval()({**batch, **meta})
        d_comp = compiled.eval()({**batch, **meta})
    for a, b in zip(d_eager, d_comp, strict=True):
        assert torch.equal(a.labels, b.labels)
        torch.testing.assert_close(b.segments, a.segments)


def test_bf16_autocast_through_the_trainer(tmp_path: Path) -> None:
    pytest.importorskip("tal.cuda_ops")
    registry = get_registry()
    cfg = load_experiment(tiny_experiment(tmp_path, epochs=1, amp=True), registry)
    torch.manual_seed(0)
    model = registry.build("models", cfg.model)
    trainer = Trainer(model, registry.build("datasets", cfg.data.train), None, None, cfg.train, progress=False)
    batch = next(iter(trainer.train_loader))
    stats = trainer.train_step(batch)
    assert torch.isfinite(torch.tensor(stats["loss"])) and stats["loss"] > 0
    val = registry.build("datasets", cfg.data.val)
    metrics = trainer.evaluate(val, registry.build("metrics", cfg.metric))
    assert 0 <= metrics["average_mAP"] <= 100
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        preds = model.eval()(val.collate([val[0]]))
    assert isinstance(preds[0], Segments) and preds[0].scores is not None and torch.isfinite(preds[0].scores).all()


def test_chunked_mlp_equals_the_whole_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    block = TransformerBlock(32, 4, mha_win_size=5).eval()
    x = torch.randn(2, 32, 40)
    mask = torch.ones(2, 1, 40, dtype=torch.bool)
    mask[1, :, 25:] = False
    with torch.no_grad():
        whole = block(x, mask)[0]
        monkeypatch.setattr(TransformerBlock, "mlp_chunk", 16)
        chunked = block(x, mask)[0]
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=1e-5)
    with torch.enable_grad():  # with autograd the MLP runs whole
        torch.testing.assert_close(block(x, mask)[0].detach(), whole, atol=1e-6, rtol=1e-5)


def test_padding_copies_nothing_when_not_needed() -> None:
    model = ActionFormer(tiny_config()).eval()
    feats = torch.randn(16, 64)
    inputs, masks = model.preprocess([feats])
    assert inputs.data_ptr() == feats.data_ptr() and masks.all()
    inputs, masks = model.preprocess([feats, torch.ones(16, 10)])
    assert inputs.shape == (2, 16, 64) and inputs[1, :, 10:].abs().sum() == 0 and int(masks[1].sum()) == 10
