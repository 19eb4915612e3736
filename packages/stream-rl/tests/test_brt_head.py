"""The block-recurrent head: gates, dilated convolutions, state carried and reset, masking."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tal.stream_rl.modeling.brt_head import BRTHead, ConvFeedForward
from tal.stream_rl.modeling.recurrent import RecurrentStateGate


def tiny_head(**kw) -> BRTHead:
    args = dict(
        input_dim=6, num_classes=4, num_f_maps=8, encoder_layers=3, decoder_layers=2, num_decoders=2, state_len=5
    )
    args.update(kw)
    return BRTHead(**args)


def test_state_gate_by_hand() -> None:
    gate = RecurrentStateGate(1)
    with torch.no_grad():
        gate.proj.weight.copy_(torch.tensor([[1.0], [2.0], [-1.0]]))  # z, i, f rows
        gate.proj.bias.zero_()
    u, s = torch.tensor([[0.5]]), torch.tensor([[2.0]])
    z, i, f = (
        torch.tanh(torch.tensor(0.5)),
        torch.sigmoid(torch.tensor(1.0 - 1.0)),
        torch.sigmoid(torch.tensor(-0.5 + 1.0)),
    )
    assert torch.allclose(gate(u, s), 2.0 * f + z * i)


def test_dilated_conv_equals_torch_conv() -> None:
    for d in (1, 2, 4, 16):
        ff = ConvFeedForward(d, 5, 7)
        x = torch.randn(2, 5, 9)
        assert torch.allclose(ff(x), F.relu(ff.conv(x)), atol=1e-5)


def test_shapes_and_padding_zeros() -> None:
    head = tiny_head().eval()
    x = torch.randn(2, 6, 10)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False
    scores, feats, state = head(x, mask)
    assert scores.shape == (3, 2, 4, 10)
    assert feats.shape == (2, 8, 10)
    assert len(state) == 3 and all(s.shape == (2, 5, 8) for s in state)
    assert torch.all(scores[:, 1, :, 7:] == 0)


def test_state_is_carried_and_changes_outputs() -> None:
    head = tiny_head().eval()
    a, b = torch.randn(1, 6, 10), torch.randn(1, 6, 10)
    mask = torch.ones(1, 10, dtype=torch.bool)
    fresh, _, _ = head(b, mask, None)
    _, _, state = head(a, mask, None)
    after_a, _, _ = head(b, mask, state)
    assert not torch.allclose(fresh, after_a)  # the memory of clip a changes clip b's scores
    again, _, _ = head(b, mask, None)
    assert torch.equal(fresh, again)  # no hidden state in the module


def test_batch_rows_do_not_interact() -> None:
    head = tiny_head().eval()
    x = torch.randn(3, 6, 10)
    mask = torch.ones(3, 10, dtype=torch.bool)
    together, _, _ = head(x, mask)
    alone, _, _ = head(x[1:2], mask[1:2])
    assert torch.allclose(together[:, 1:2], alone, atol=1e-5)


def test_state_gradient_flows_within_a_clip() -> None:
    head = tiny_head()
    x = torch.randn(1, 6, 10)
    mask = torch.ones(1, 10, dtype=torch.bool)
    init = [torch.randn(1, 5, 8, requires_grad=True) for _ in range(3)]
    scores, _, _ = head(x, mask, init)
    scores.sum().backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in init)
