"""Rotary embedding, window masks and masked attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tal.stream_rl.modeling.attention import MultiHeadAttention, RotaryEmbedding, window_mask


def test_window_mask_by_hand() -> None:
    assert window_mask(4, 1).int().tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    # window 2: itself and the previous token
    assert window_mask(4, 2).int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    # window 4: two before, itself, one after
    assert window_mask(5, 4)[2].int().tolist() == [1, 1, 1, 1, 0]
    assert window_mask(3, 64).all()


def test_rotary_rotates_pairs_by_position_angle() -> None:
    rot = RotaryEmbedding(4, base=100.0)
    x = torch.zeros(1, 3, 6)
    x[0, :, 0] = 1.0  # first channel of the first pair (channels 0 and 2 rotate together)
    out = rot(x)
    for p in range(3):
        angle = p * 100.0 ** (-0 / 4)
        assert math.isclose(float(out[0, p, 0]), math.cos(angle), abs_tol=1e-6)
        assert math.isclose(float(out[0, p, 2]), math.sin(angle), abs_tol=1e-6)
    assert torch.equal(out[..., 4:], x[..., 4:])  # channels past dim untouched


def test_rotary_scores_depend_on_offset_only() -> None:
    rot = RotaryEmbedding(8)
    q = torch.randn(8).expand(10, 8)[None]
    k = torch.randn(8).expand(10, 8)[None]
    scores = rot(q)[0] @ rot(k)[0].T
    for offset in (-3, 0, 2):
        diag = torch.diagonal(scores, offset)
        assert torch.allclose(diag, diag[0].expand_as(diag), atol=1e-5)


def _reference(mha: MultiHeadAttention, q_in, kv_in, visible):  # plain softmax attention
    q = mha.rotary(mha._heads(mha.query(q_in)))
    k, v = mha.key_value(kv_in).chunk(2, dim=-1)
    k, v = mha.rotary(mha._heads(k)), mha._heads(v)
    s = q @ k.transpose(-2, -1) / math.sqrt(mha.head_dim)
    s = s.masked_fill(~visible, float("-inf"))
    return (F.softmax(s, -1) @ v).transpose(1, 2).reshape(q_in.shape)


def test_padded_keys_are_never_attended() -> None:
    mha = MultiHeadAttention(8, num_heads=2)
    x = torch.randn(2, 6, 8)
    key_mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    out = mha(x, x, key_mask=key_mask, allowed=window_mask(6, 4))
    changed = x.clone()
    changed[0, 4:] = 100.0  # padded keys of video 0
    out2 = mha(changed, changed, key_mask=key_mask, allowed=window_mask(6, 4))
    assert torch.allclose(out[0, :4], out2[0, :4], atol=1e-6)
    visible = key_mask[:, None, None, :] & window_mask(6, 4)[None, None]
    visible = visible | ~visible.any(-1, keepdim=True)
    assert torch.allclose(out, _reference(mha, x, x, visible), atol=1e-5)
    assert torch.isfinite(out).all()


def test_query_with_no_visible_key_is_finite() -> None:
    mha = MultiHeadAttention(4)
    x = torch.randn(1, 3, 4)
    key_mask = torch.tensor([[True, False, False]])
    out = mha(x, x, key_mask=key_mask, allowed=window_mask(3, 1))  # queries 1, 2 see nothing
    assert torch.isfinite(out).all()


def test_rotary_table_cache_is_bounded() -> None:
    rot = RotaryEmbedding(4)
    for n in range(1, 30):
        rot(torch.zeros(1, n, 4))
    assert len(rot._tables) == RotaryEmbedding.MAX_TABLES
    assert torch.equal(rot(torch.ones(1, 3, 4)), RotaryEmbedding(4)(torch.ones(1, 3, 4)))  # recomputed the same
