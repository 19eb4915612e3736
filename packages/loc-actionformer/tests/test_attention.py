"""Local attention: the blocked SDPA fast path and the band-mask reference equal the loop oracle."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles.local_attention import local_attention_loop

from tal.loc_actionformer import ActionFormer
from tal.loc_actionformer.modeling.blocks import (
    MaskedMHCA,
    TransformerBlock,
    local_attention_blocked,
    local_attention_reference,
)


def _inputs(b, h, t, d, lengths):
    q, k, v = (torch.randn(b, h, t, d) for _ in range(3))
    key_mask = torch.arange(t)[None, :] < torch.as_tensor(lengths)[:, None]
    return q, k, v, key_mask


@pytest.mark.parametrize("w", [1, 2, 4, 9])
@pytest.mark.parametrize("with_bias", [False, True])
def test_both_paths_match_release_semantics(w: int, with_bias: bool) -> None:
    q, k, v, key_mask = _inputs(2, 2, 23, 8, [23, 14])
    rel_bias = torch.randn(2, 2 * w + 1) if with_bias else None
    expected = local_attention_loop(q, k, v, key_mask, w, rel_bias).float()
    ref = local_attention_reference(q, k, v, key_mask, w, rel_bias=rel_bias)
    fast = local_attention_blocked(q, k, v, key_mask, w, rel_bias=rel_bias)
    torch.testing.assert_close(ref, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    t=st.integers(1, 70),
    w=st.integers(1, 12),
    block=st.one_of(st.none(), st.integers(1, 40)),
    cut=st.floats(0.0, 1.0),
    b=st.integers(1, 2),
)
def test_blocked_equals_band_mask(t: int, w: int, block: int | None, cut: float, b: int) -> None:
    lengths = [t] + [max(1, round(cut * t))] * (b - 1)
    q, k, v, key_mask = _inputs(b, 3, t, 4, lengths)
    rel_bias = torch.randn(3, 2 * w + 1)
    ref = local_attention_reference(q, k, v, key_mask, w, rel_bias=rel_bias)
    fast = local_attention_blocked(q, k, v, key_mask, w, rel_bias=rel_bias, block_size=block)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


def test_window_larger_than_sequence_is_global_attention() -> None:
    q, k, v, key_mask = _inputs(2, 2, 10, 8, [10, 6])
    fast = local_attention_blocked(q, k, v, key_mask, 20)
    scores = (q @ k.transpose(-1, -2) / math.sqrt(8)).masked_fill(~key_mask[:, None, None, :], float("-inf"))
    full = torch.softmax(scores, -1) @ v * key_mask[:, None, :, None]
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_mhca_module_impls_agree(stride: int) -> None:
    attn = MaskedMHCA(16, 4, window_size=7, n_qx_stride=stride, n_kv_stride=stride, use_rel_pe=True)
    x = torch.randn(2, 16, 36)
    mask = (torch.arange(36)[None, :] < torch.tensor([36, 21])[:, None]).unsqueeze(1)
    attn.impl = "blocked_sdpa"
    out_fast, m_fast = attn(x, mask)
    attn.impl = "band_mask"
    out_ref, m_ref = attn(x, mask)
    assert out_fast.shape == (2, 16, 36 // stride)
    torch.testing.assert_close(m_fast, m_ref)
    torch.testing.assert_close(out_fast, out_ref, atol=1e-5, rtol=1e-5)
    assert (out_fast[1, :, (21 + stride - 1) // stride :] == 0).all()


def test_global_mhca_ignores_padded_keys() -> None:
    attn = MaskedMHCA(8, 2, window_size=-1)
    x = torch.randn(1, 8, 12)
    out, _ = attn(x, (torch.arange(12) < 7)[None, None])
    # fewer padded steps (same content): valid outputs must not change
    out_short, _ = attn(x[..., :9], (torch.arange(9) < 7)[None, None])
    torch.testing.assert_close(out[..., :7], out_short[..., :7], atol=1e-5, rtol=1e-5)
    assert (out[..., 7:] == 0).all()


def test_transformer_block_downsamples_and_masks() -> None:
    blk = TransformerBlock(16, 4, n_ds_strides=(2, 2), mha_win_size=5, path_pdrop=0.1).eval()
    x = torch.randn(2, 16, 20)
    mask = (torch.arange(20)[None, :] < torch.tensor([20, 9])[:, None]).unsqueeze(1)
    out, out_mask = blk(x, mask)
    assert out.shape == (2, 16, 10)
    assert out_mask[1, 0].tolist() == [True] * 5 + [False] * 5
    assert (out[1, :, 5:] == 0).all()


def test_full_model_same_outputs_with_either_impl() -> None:
    model = ActionFormer(tiny_config(n_mha_win_size=[5, 5, 3])).eval()
    feats = [torch.randn(16, 64), torch.randn(16, 40)]
    inputs, masks = model.preprocess(feats)
    with torch.no_grad():
        model.set_attention_impl("blocked_sdpa")
        _, _, cls_a, off_a = model.forward_features(inputs, masks)
        model.set_attention_impl("band_mask")
        _, _, cls_b, off_b = model.forward_features(inputs, masks)
    for a, b in zip(cls_a + off_a, cls_b + off_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
