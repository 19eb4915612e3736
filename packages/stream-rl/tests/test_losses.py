"""The release's clip loss (CE + 0.15 smoothing, per-video normalisation) and the Dice reward."""

from __future__ import annotations

import math

import pytest
import torch
from oracles.release_loss import release_clip_loss, release_dice, release_reward

from tal.stream_rl.modeling.losses import cross_entropy_terms, smoothing_terms, supervised_terms
from tal.stream_rl.modeling.rl import dice_coefficient, dice_reward


def test_cross_entropy_by_hand() -> None:
    # one video, 2 classes, 2 frames, scores 0 → CE = ln 2 per frame; 3 clips in the video, 2 valid labels
    scores = torch.zeros(1, 2, 2)
    labels = torch.tensor([[0, 1]])
    terms = cross_entropy_terms(scores, labels, torch.tensor([3.0]))
    assert math.isclose(float(terms), 2 * math.log(2) / 3 / 2, rel_tol=1e-6)


def test_smoothing_by_hand() -> None:
    # log-softmax of [0, ln 3] is [-ln 4, ln 3 - ln 4]; of [0, 0] is [-ln 2, -ln 2]
    scores = torch.tensor([[[0.0, 0.0], [0.0, math.log(3)]]])  # (B=1, K=2, W=2)
    mask = torch.tensor([[True, True]])
    d0 = (-math.log(4) + math.log(2)) ** 2
    d1 = (math.log(3) - math.log(4) + math.log(2)) ** 2
    expected = (d0 + d1) / 2 / 1  # mean over K (W-1) = 2 entries, 1 clip, batch of 1
    assert math.isclose(float(smoothing_terms(scores, mask, torch.tensor([1.0]))), expected, rel_tol=1e-6)
    big = torch.tensor([[[0.0, 0.0], [0.0, 20.0]]])  # squared differences above 16 are truncated
    assert float(smoothing_terms(big, mask, torch.tensor([1.0]))) <= 16.0


def test_smoothing_gradient_flows_into_the_later_frame_only() -> None:
    scores = torch.randn(1, 3, 4, requires_grad=True)
    smoothing_terms(scores, torch.ones(1, 4, dtype=torch.bool), torch.tensor([1.0])).sum().backward()
    assert scores.grad is not None
    assert torch.all(scores.grad[..., 0] == 0)  # frame 0 only appears detached (as the earlier frame)


@pytest.mark.parametrize("smooth_weight", [0.0, 0.15])
def test_supervised_terms_equal_the_release_loop(smooth_weight: float) -> None:
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(3, 2, 4, 6, generator=g)  # 3 stages, 2 videos, 4 classes, 6 frames
    labels = torch.tensor([[0, 1, 1, 2, 3, 3], [2, 2, 0, -100, -100, -100]])
    masks = labels != -100
    clips = [3, 1]
    ours = supervised_terms(scores, labels, masks, torch.tensor(clips, dtype=torch.float32), smooth_weight).sum()
    assert math.isclose(
        float(ours), release_clip_loss(scores.double(), labels, masks, clips, smooth_weight), rel_tol=1e-5
    )


def test_dice_and_reward_by_hand() -> None:
    # K = 2, W = 2, prediction one-hot and right on both frames: per class (2·1 + s) / (1 + 1 + s) = 1
    probs = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    labels = torch.tensor([[0, 1]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    assert torch.allclose(dice_coefficient(probs, labels, mask), torch.tensor([1.0]))
    assert torch.allclose(dice_reward(torch.tensor([1.0])), torch.tensor([3.0]))  # 4^1 - 1
    assert torch.allclose(dice_reward(torch.tensor([0.0])), torch.tensor([0.0]))  # 4^0 - 1
    assert torch.allclose(dice_reward(torch.tensor([0.5])), torch.tensor([1.0]))  # 4^0.5 - 1
    # uniform prediction, s = 0: class 0: num 2·0.5 = 1, den 0.25·2 + 1 = 1.5 → 2/3; class 1 the same
    uniform = torch.full((1, 2, 2), 0.5)
    assert torch.allclose(dice_coefficient(uniform, labels, mask, smooth=0.0), torch.tensor([2 / 3]))


def test_padded_frames_count_in_the_denominator_only() -> None:
    # frame 1 is padding (label -100 → one-hot class 0): numerator masked, denominator not
    probs = torch.tensor([[[1.0, 0.5], [0.0, 0.5]]])
    labels = torch.tensor([[0, -100]])
    mask = torch.tensor([[True, False]])
    c0 = (2 * 1.0) / (1.0 + 0.25 + 1.0 + 1.0)  # p² = 1, 0.25; target² = 1, 1 (padding as class 0)
    c1 = 0.0 / (0.0 + 0.25)
    assert torch.allclose(dice_coefficient(probs, labels, mask, smooth=0.0), torch.tensor([(c0 + c1) / 2]))


def test_dice_and_reward_equal_the_release_loop() -> None:
    g = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(2, 5, 9, generator=g), dim=1)
    labels = torch.randint(0, 5, (2, 9), generator=g)
    labels[1, 6:] = -100
    masks = labels != -100
    ours = dice_coefficient(probs, labels, masks)
    assert math.isclose(float(ours.mean()), release_dice(probs.double(), labels, masks), rel_tol=1e-5)
    # batch of one video: the release's reward of the batch
    r = dice_reward(dice_coefficient(probs[:1], labels[:1], masks[:1]))
    assert math.isclose(float(r), release_reward(probs[:1].double(), labels[:1], masks[:1]), rel_tol=1e-5)
