"""The svtas-rl model: objectives, training memory, eval equals the stream, param groups, RGB end to end."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model

from tal.stream_rl import segment_offline
from tal.stream_rl.clips import ClipSpec, batch_clip_inputs, batch_clip_labels
from tal.stream_rl.modeling.losses import supervised_terms
from tal.stream_rl.modeling.rl import dice_coefficient, dice_reward


def batch(lengths: list[int], channels: int = 6, classes: int = 5) -> dict:
    t = max(lengths)
    mask = torch.zeros(len(lengths), 1, t, dtype=torch.bool)
    labels = torch.full((len(lengths), t), -100, dtype=torch.int64)
    for i, n in enumerate(lengths):
        mask[i, :, :n] = True
        labels[i, :n] = torch.randint(0, classes, (n,))
    return {"features": torch.randn(len(lengths), channels, t) * mask, "mask": mask, "labels": labels}


def no_dropout(model):
    for m in model.modules():
        if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)):
            m.p = 0.0
    return model


@pytest.mark.parametrize("objective", ["supervised", "reward_weighted", "reinforce_td", "reinforce_mc"])
def test_every_objective_trains(objective: str) -> None:
    model = tiny_model(loss={"objective": objective}).train()
    out = model(batch([40, 23]))
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith("head.decoders"))
    value_grad = grads["value_head.weight"]
    uses_critic = objective.startswith("reinforce")
    assert (value_grad is not None and value_grad.abs().sum() > 0) == uses_critic
    assert model.ddp_find_unused_parameters == (not uses_critic)


def test_reward_weighted_loss_equals_hand_assembly() -> None:
    """One 16-frame video = one clip: loss = L_sup · (4^Dice − 1) of that clip, nothing else."""
    model = no_dropout(tiny_model(loss={"objective": "reward_weighted"})).train()
    b = batch([16])
    torch.manual_seed(3)
    out = model(b)
    spec = model.clip_spec
    clip, fmask = batch_clip_inputs(b["features"], torch.tensor([16]), spec, 0)
    res = model.forward_clip(clip, fmask, None)
    y = batch_clip_labels(b["labels"], torch.tensor([16]), spec, 0)
    sup = supervised_terms(res.frame_scores, y, fmask, torch.tensor([1.0]), 0.15)
    reward = dice_reward(dice_coefficient(torch.softmax(res.frame_scores[-1], 1), y, fmask))
    assert torch.allclose(out["loss"], (sup * reward).sum(), rtol=1e-5)
    assert torch.allclose(out["reward"], reward.mean(), rtol=1e-5)


def test_training_memory_modes() -> None:
    """'video' carries the state across a video's clips, 'clip' starts every clip from zeros."""
    b = batch([48])  # three clips
    video = no_dropout(tiny_model(loss={"objective": "supervised"})).train()
    clip = no_dropout(tiny_model(loss={"objective": "supervised"}, train_memory="clip")).train()
    clip.load_state_dict(video.state_dict())
    first = batch([16])
    first["features"], first["labels"] = b["features"][..., :16], b["labels"][..., :16]
    # first clip alone: both modes agree (zero state); whole video: they differ (memory)
    assert torch.allclose(video(first)["loss"], clip(first)["loss"])
    assert not torch.allclose(video(b)["loss"], clip(b)["loss"])


def test_state_is_detached_between_clips() -> None:
    model = no_dropout(tiny_model(loss={"objective": "supervised"})).train()
    seen = []
    original = model.head.forward

    def spy(x, mask, state=None):
        seen.append(state)
        return original(x, mask, state)

    model.head.forward = spy  # type: ignore[method-assign]
    model(batch([40]))["loss"].backward()
    assert seen[0] is None
    assert all(s is not None and all(not t.requires_grad for t in s) for s in seen[1:])


def test_eval_predictions_equal_the_stream() -> None:
    model = tiny_model().eval()
    b = batch([40, 23])
    preds = model(b)
    assert [p.shape for p in preds] == [(40,), (23,)]
    for i, n in enumerate([40, 23]):
        assert torch.equal(preds[i], segment_offline(model, b["features"][i, :, :n]).labels)


def test_stream_clips_window_mismatch_is_named() -> None:
    model = tiny_model().train()
    b = batch([20])
    b["clip_window"] = 64
    with pytest.raises(ValueError, match="clips of 64 frames"):
        model(b)


def test_video_clips_normaliser_from_the_batch() -> None:
    """A piece of a 10-clip video is normalised by 10 (the release's precise_sliding_num)."""
    model = no_dropout(tiny_model(loss={"objective": "supervised"})).train()
    b = batch([16])
    own = model(b)["loss"]
    b["clips_per_video"] = torch.tensor([10.0])
    assert torch.allclose(model(b)["loss"], own / 10, rtol=1e-4)


def test_param_groups_scale_the_backbone_lr() -> None:
    model = tiny_model(
        backbone={"name": "stream-conv3d", "widths": [4, 8], "temporal_stride": 2},
        head={"num_f_maps": 8},
    )
    groups = model.param_groups(1e-4)
    names = {n for g in groups for n in g["names"]}
    assert names == {n for n, p in model.named_parameters() if p.requires_grad}
    for g in groups:
        in_backbone = all(n.startswith("backbone.") for n in g["names"])
        assert in_backbone == ("lr_scale" in g)
        if in_backbone:
            assert g["lr_scale"] == 0.02
    decayed = {n for g in groups if g["weight_decay"] > 0 for n in g["names"]}
    assert "head.encoder.conv_1x1.weight" in decayed and "head.encoder.conv_1x1.bias" not in decayed


def test_rgb_end_to_end_clip_and_stream() -> None:
    """Frames (3, T, H, W) through the small 3-D network: temporal stride 2, token = 2 sampled frames."""
    model = tiny_model(
        backbone={"name": "stream-conv3d", "widths": [4, 8], "temporal_stride": 2}, head={"num_f_maps": 8}
    )
    assert model.token_stride == 4 and model.clip_spec == ClipSpec(8, 2)
    frames = torch.randn(1, 3, 40, 16, 16)
    mask = torch.ones(1, 1, 40, dtype=torch.bool)
    labels = torch.randint(0, 5, (1, 40))
    out = model.train()({"features": frames, "mask": mask, "labels": labels})
    assert "backbone" in out and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.backbone.stages[0][0].weight.grad.abs().sum() > 0
    model.eval()
    off = segment_offline(model, frames[0])
    assert off.labels.shape == (40,)
    # frames 4j .. 4j+3 of a clip share one token
    assert torch.equal(off.probs[0::4], off.probs[1::4]) and torch.equal(off.probs[0::4], off.probs[3::4])


def test_clip_len_must_fit_the_backbone_stride() -> None:
    with pytest.raises(ValueError, match="divisible"):
        tiny_model(clip_len=7, backbone={"name": "stream-conv3d", "widths": [4, 4], "temporal_stride": 2})


def test_offline_mode_runs_the_whole_video_as_one_clip() -> None:
    model = tiny_model(eval_mode="offline").eval()
    video = torch.randn(6, 37)
    labels, probs = model.segment_whole(video)
    assert labels.shape == (37,) and probs.shape == (37, 5)
    # by hand: 19 sampled frames (0, 2, ..., 36), one clip of 19 x 2 = 38 frame slots, no state
    clip = video[:, 0:37:2][None]
    mask = (torch.arange(38) < 37)[None]
    res = model.forward_clip(clip, mask, None)
    assert torch.allclose(probs, torch.softmax(res.frame_scores[-1, 0], dim=0).T[:37], atol=1e-6)
    b = batch([37])
    b["features"][0] = video
    assert torch.equal(model(b)[0], labels)  # eval_mode="offline" predicts this way
    streamed = tiny_model().eval()
    streamed.load_state_dict(model.state_dict())
    assert not torch.equal(segment_offline(streamed, video).probs, probs)  # three clips differ from one
