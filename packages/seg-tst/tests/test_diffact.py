"""DiffAct: schedule, time pairs and embedding against hand values; attention, decoder and DDIM sampling
against the plain oracle; determinism under a seed; the training losses against hand computations."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracles import release_diffact as oracle

from tal.seg_tst import DiffAct
from tal.seg_tst.config import DiffActConfig
from tal.seg_tst.modeling.diffact import (
    cosine_beta_schedule,
    ddim_time_pairs,
    local_window_attention,
    local_window_attention_frames_last,
    schedule_tensors,
    timestep_embedding,
)
from tal.seg_tst.modeling.frame_losses import (
    boundary_loss,
    boundary_targets,
    class_weights_from_counts,
    frame_ce_loss,
    smoothing_loss,
    soft_targets,
)
from tal.seg_tst.modeling.frames_last import dilated_conv_frames_last


def tiny_config(**kw) -> DiffActConfig:
    base = {
        "num_classes": 4,
        "input_dim": 6,
        "encoder_params": {"num_layers": 4, "num_f_maps": 8, "feature_layer_indices": [1, 3]},
        "decoder_params": {"num_layers": 3, "num_f_maps": 6, "time_emb_dim": 16, "kernel_size": 3},
        "diffusion_params": {"timesteps": 1000, "sampling_timesteps": 5},
    }
    base.update(kw)
    return DiffActConfig.model_validate(base)


def test_cosine_schedule_hand_values() -> None:
    betas = cosine_beta_schedule(1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert betas.dtype == torch.float64
    assert betas[0].item() == pytest.approx(1 - f(1) / f(0), rel=1e-12)
    assert betas[500].item() == pytest.approx(1 - f(501) / f(500), rel=1e-12)
    assert betas[-1].item() == 0.999  # clipped
    sched = schedule_tensors(1000)
    assert sched["alphas_cumprod"][10].item() == pytest.approx(f(11) / f(0), rel=1e-9)
    assert sched["alphas_cumprod_prev"][0].item() == 1.0
    ac = sched["alphas_cumprod"]
    torch.testing.assert_close(sched["sqrt_recipm1_alphas_cumprod"], torch.sqrt(1 / ac - 1))


def test_ddim_time_pairs_are_the_release_schedule() -> None:
    pairs = ddim_time_pairs(1000, 25)
    assert len(pairs) == 25
    assert pairs[0] == (999, 959) and pairs[1] == (959, 919) and pairs[-1] == (39, -1)
    # linspace(-1, 999, 5) = [-1, 249, 499, 749, 999] as in the release's comment
    assert ddim_time_pairs(1000, 4) == [(999, 749), (749, 499), (499, 249), (249, -1)]


def test_timestep_embedding_hand_value() -> None:
    emb = timestep_embedding(torch.tensor([3]), 8)
    w = [math.exp(-i * math.log(10000) / 3) for i in range(4)]
    expected = [math.sin(3 * x) for x in w] + [math.cos(3 * x) for x in w]
    torch.testing.assert_close(emb[0], torch.tensor(expected))


def test_local_window_attention_hand_example() -> None:
    # T=2, kernel 3, dilation 1: frame 0 sees keys (pad, 0, 1); the padded key is dropped after the softmax.
    q = torch.tensor([[[1.0, 0.0]]])  # (1, 1, 2)
    k = torch.tensor([[[0.0, 2.0]]])
    v = torch.tensor([[[10.0, 20.0]]])
    out = local_window_attention(q, k, v, 3, 1, scale_dim=1)
    eps = 1e-6
    logits0 = torch.tensor([0 + math.log(eps), 0 + math.log(1 + eps), 2 + math.log(1 + eps)])
    w0 = torch.softmax(logits0, 0)
    assert out[0, 0, 0].item() == pytest.approx((w0[1] * 10 + w0[2] * 20).item(), rel=1e-5)
    logits1 = torch.tensor([0 + math.log(1 + eps), 0 + math.log(1 + eps), math.log(eps)])
    w1 = torch.softmax(logits1, 0)
    assert out[0, 0, 1].item() == pytest.approx((w1[0] * 10 + w1[1] * 20).item(), rel=1e-5)


@pytest.mark.parametrize(("t_len", "kernel", "dilation"), [(17, 5, 1), (17, 5, 4), (9, 3, 16), (40, 7, 8)])
def test_local_window_attention_equals_gathered_oracle(t_len: int, kernel: int, dilation: int) -> None:
    q, k, v = (torch.randn(2, 5, t_len) for _ in range(3))
    ours = local_window_attention(q, k, v, kernel, dilation, 5)
    torch.testing.assert_close(ours, oracle.gathered_attention(q, k, v, kernel, dilation, 5), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("t_len", "kernel", "dilation"), [(17, 5, 1), (17, 5, 4), (9, 3, 16), (40, 7, 8)])
def test_frames_last_attention_equals_gathered_oracle(t_len: int, kernel: int, dilation: int) -> None:
    # (9, 3, 16): both side slots lie wholly outside the video for every frame
    qkv = torch.randn(2, t_len, 15)  # q, k, v as column slices of one projection, as the layers pass them
    q, k, v = qkv[..., :5], qkv[..., 5:10], qkv[..., 10:]
    ours = local_window_attention_frames_last(q, k, v, kernel, dilation, 5)
    ref = oracle.gathered_attention(*(a.transpose(1, 2) for a in (q, k, v)), kernel, dilation, 5)
    torch.testing.assert_close(ours, ref.transpose(1, 2), rtol=1e-5, atol=1e-6)
    base = torch.randn(2, t_len, 5)
    into = base.clone()
    out = local_window_attention_frames_last(q, k, v, kernel, dilation, 5, accumulate=into)
    assert out is into
    torch.testing.assert_close(out, base + ref.transpose(1, 2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dilation", [1, 8, 128, 256, 1024])
def test_frames_last_dilated_conv_equals_conv1d(dilation: int) -> None:
    # 128 and up take the shifted-taps products (1024 > T: only the centre tap lies inside the video)
    conv = torch.nn.Conv1d(6, 4, 5, padding=2 * dilation, dilation=dilation)
    x = torch.randn(2, 6, 300)
    with torch.no_grad():
        ours = dilated_conv_frames_last(conv, x.transpose(1, 2).contiguous())
        torch.testing.assert_close(ours, conv(x).transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_inference_path_equals_the_oracle() -> None:
    # without autograd the encoder and decoder layers run frames-last; the numbers must not change
    model = DiffAct(tiny_config()).eval()
    x = torch.randn(1, 6, 37)
    event, t = torch.rand(1, 4, 37), torch.tensor([321])
    with torch.no_grad():
        logits, cond = model.encode(x)
        ref_logits, ref_cond = oracle.encoder_forward(model, x)
        torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(cond, ref_cond, rtol=1e-5, atol=1e-5)
        terms = model.decoder.condition_terms(cond, frames_last=True)
        assert terms[0].frames_last and terms[0].qk.shape == (1, 37, 2 * model.config.decoder_params.num_f_maps)
        expected = oracle.decoder_forward(model, cond, t, event)
        torch.testing.assert_close(model.decoder(cond, t, event, terms), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.decoder(cond, t, event), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="forward_frames_last"):
        model.decoder.module.layers[0](torch.randn(1, model.config.decoder_params.num_f_maps, 37), terms[0])


def test_encoder_and_decoder_equal_the_oracle() -> None:
    model = DiffAct(tiny_config()).eval()
    x = torch.randn(1, 6, 37)
    logits, cond = model.encode(x)
    ref_logits, ref_cond = oracle.encoder_forward(model, x)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cond, ref_cond, rtol=1e-5, atol=1e-5)
    assert cond.shape[1] == model.feat_dim == 16
    event = torch.rand(1, 4, 37)
    t = torch.tensor([321])
    torch.testing.assert_close(
        model.decoder(cond, t, event), oracle.decoder_forward(model, cond, t, event), rtol=1e-5, atol=1e-5
    )


def test_ddim_sampling_equals_the_oracle_and_is_deterministic() -> None:
    model = DiffAct(tiny_config()).eval()
    x = torch.randn(1, 6, 29)
    a = model.sample(x, seed=666)
    b = model.sample(x, seed=666)
    assert torch.equal(a, b)
    ref = oracle.ddim_sample(model, x, seed=666)
    torch.testing.assert_close(a, ref, rtol=1e-4, atol=1e-5)
    assert a.shape == (1, 4, 29) and float(a.min()) >= 0 and float(a.max()) <= 1
    torch.testing.assert_close(a.sum(1), torch.ones(1, 29), rtol=1e-5, atol=1e-5)
    c = model.sample(x, seed=667)
    assert not torch.equal(a, c)


def test_seeded_sampling_leaves_the_global_rng_alone() -> None:
    model = DiffAct(tiny_config()).eval()
    x = torch.randn(1, 6, 10)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    model.sample(x, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_25_steps_of_the_gtea_preset_on_a_short_video() -> None:
    model = DiffAct.from_preset("gtea", 11).eval()
    x = torch.randn(1, 2048, 24)
    out = model.sample(x, seed=0)
    assert model.sampling_timesteps == 25
    torch.testing.assert_close(out, oracle.ddim_sample(model, x, seed=0), rtol=1e-4, atol=1e-5)


# -- losses -------------------------------------------------------------------------------------
def test_smoothing_loss_hand_value() -> None:
    logits = torch.tensor([[[0.0, 1.0, 1.0], [0.0, 0.0, 3.0]]])  # (1, 2, 3)
    logp = F.log_softmax(logits, 1)
    d = (logp[:, :, 1:] - logp[:, :, :-1]) ** 2
    assert smoothing_loss(logits).item() == pytest.approx(d.clamp(max=16).mean().item())
    big = torch.tensor([[[0.0, 100.0], [0.0, 0.0]]])
    assert smoothing_loss(big).item() == pytest.approx((math.log(2) ** 2 + 16.0) / 2, rel=1e-6)  # class 1 clamps
    mask = torch.tensor([[[True, True, False]]])
    assert smoothing_loss(logits, mask).item() == pytest.approx(d[:, :, :1].clamp(max=16).sum().item() / 4)


def test_frame_ce_loss_hard_weighted_and_soft() -> None:
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])  # (1, K=2, T=2)
    labels = torch.tensor([0, 1])
    lsm = F.log_softmax(logits, 1)[0]
    nll = [-lsm[0, 0].item(), -lsm[1, 1].item()]
    assert frame_ce_loss(logits, labels).item() == pytest.approx(sum(nll) / 2)
    w = torch.tensor([0.5, 2.0])
    # nn.CrossEntropyLoss(weight, reduction="none").mean(): mean of w_y * nll over frames
    assert frame_ce_loss(logits, labels, class_weights=w).item() == pytest.approx((0.5 * nll[0] + 2.0 * nll[1]) / 2)
    soft = torch.tensor([[[0.7, 0.2], [0.3, 0.8]]])
    expected = -(soft[0] * lsm).sum(0).mean().item()
    assert frame_ce_loss(logits, labels, soft=soft).item() == pytest.approx(expected)


def test_soft_targets_are_scipy_gaussian_rows() -> None:
    onehot = torch.zeros(1, 2, 9)
    onehot[0, 0, :4] = 1
    onehot[0, 1, 4:] = 1
    from scipy.ndimage import gaussian_filter1d

    out = soft_targets(onehot, 1.4)
    torch.testing.assert_close(
        out[0, 0].double(), torch.from_numpy(gaussian_filter1d(onehot[0, 0].double().numpy(), 1.4))
    )


def test_boundary_loss_hand_value() -> None:
    logits = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]]])
    p = torch.softmax(logits, 1)[0]
    pred = [1 - float((p[:, t] * p[:, t - 1]).sum()) for t in (1, 2)]
    target = torch.tensor([[[0.0, 0.2, 1.0]]])
    bce = [-(0.2 * math.log(pred[0]) + 0.8 * math.log(1 - pred[0])), -math.log(pred[1])]
    assert boundary_loss(logits, target).item() == pytest.approx(sum(bce) / 2, rel=1e-5)


def test_boundary_targets_hand_value() -> None:
    sharp = boundary_targets(np.array([0, 0, 1, 1, 1, 2]), None)
    assert sharp.tolist() == [0, 1, 1, 0, 1, 1]
    smooth = boundary_targets(np.array([0] * 10 + [1] * 10), 1.0)
    assert smooth.max() == 1.0 and smooth[9] == 1.0 and smooth[10] == 1.0 and smooth[0] < 1e-3
    assert boundary_targets(np.array([3, 3, 3]), 1.0).tolist() == [0, 0, 0]


def test_class_weights_hand_value() -> None:
    w = class_weights_from_counts(np.array([90, 0, 10]))
    assert w.tolist() == pytest.approx([100 / (100 * 3), 100 / (10 * 3), 100 / (20 * 3)])


def test_training_losses_are_finite_and_reach_both_halves() -> None:
    model = DiffAct(tiny_config(soft_label=None)).train()
    x = torch.randn(1, 6, 30)
    labels = torch.tensor([0] * 10 + [2] * 12 + [1] * 8)
    bnd = torch.from_numpy(boundary_targets(labels.numpy(), 1.0)).float()
    out = model.training_losses(x, labels, bnd, rng=random.Random(0))
    assert set(out.terms) == {
        "encoder_ce_loss",
        "encoder_mse_loss",
        "encoder_boundary_loss",
        "decoder_ce_loss",
        "decoder_mse_loss",
        "decoder_boundary_loss",
    }
    assert out.terms["encoder_boundary_loss"].item() == 0
    out.total.backward()
    assert model.encoder.conv_in.weight.grad is not None and model.decoder.conv_out.weight.grad is not None


def test_condition_masks() -> None:
    model = DiffAct(tiny_config())
    labels = torch.tensor([0, 0, 1, 1, 2])
    bnd = torch.tensor([[[0.0, 0.4, 0.6, 0.1, 0.0]]])
    rng = random.Random(0)
    assert model.condition_mask("full", labels, bnd, rng) is None
    assert model.condition_mask("zero", labels, bnd, rng).sum() == 0
    assert model.condition_mask("boundary03-", labels, bnd, rng).reshape(-1).tolist() == [1, 0, 0, 1, 1]
    assert model.condition_mask("boundary05-", labels, bnd, rng).reshape(-1).tolist() == [1, 1, 0, 1, 1]
    seg = model.condition_mask("segment=1", labels, bnd, rng).reshape(-1)
    dropped = {int(labels[i]) for i in range(5) if seg[i] == 0}
    assert len(dropped) == 1 and all(seg[i] == 0 for i in range(5) if int(labels[i]) in dropped)
