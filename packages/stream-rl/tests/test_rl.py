"""Policy-gradient pieces against hand values, and toy environments where the optimal policy is known."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tal.stream_rl.modeling.rl import (
    action_log_prob,
    dice_coefficient,
    dice_reward,
    discounted_returns,
    reinforce_loss,
    sample_actions,
    td_targets,
)


def test_returns_and_td_targets_by_hand() -> None:
    r = torch.tensor([1.0, 0.0, 2.0])
    assert torch.allclose(discounted_returns(r, 0.5), torch.tensor([1.5, 1.0, 2.0]))  # 1 + .5·0 + .25·2
    v = torch.tensor([0.3, 0.6, 0.9])
    assert torch.allclose(td_targets(r, v, 0.5), torch.tensor([1.3, 0.45, 2.0]))  # last: no bootstrap
    assert discounted_returns(torch.zeros(0), 0.9).shape == (0,)


def test_policy_gradient_by_hand() -> None:
    # 2 classes, 2 tokens, uniform policy, actions (0, 1), advantage 2:
    # loss = -2 · mean_t log pi(a_t); d loss / d logit_{c,t} = -2 · (onehot - 0.5) / 2
    logits = torch.zeros(1, 2, 2, requires_grad=True)
    actions = torch.tensor([[0, 1]])
    lp = action_log_prob(logits, actions, torch.ones(1, 2, dtype=torch.bool))
    assert math.isclose(float(lp.detach()), math.log(0.5), rel_tol=1e-6)
    reinforce_loss(lp, torch.tensor([2.0])).sum().backward()
    expected = torch.tensor([[[-0.5, 0.5], [0.5, -0.5]]])
    assert torch.allclose(logits.grad, expected)


def test_masked_tokens_carry_no_gradient() -> None:
    logits = torch.zeros(1, 3, 4, requires_grad=True)
    mask = torch.tensor([[True, True, False, False]])
    reinforce_loss(action_log_prob(logits, torch.zeros(1, 4, dtype=torch.long), mask), torch.ones(1)).sum().backward()
    assert torch.all(logits.grad[..., 2:] == 0) and logits.grad[..., :2].abs().sum() > 0


def test_advantage_has_no_gradient() -> None:
    lp = torch.tensor([-1.0], requires_grad=True)
    adv = torch.tensor([3.0], requires_grad=True)
    reinforce_loss(lp, adv).sum().backward()
    assert adv.grad is None and torch.allclose(lp.grad, torch.tensor([-3.0]))


def test_sample_actions_follows_the_policy() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.log(torch.tensor([0.1, 0.9]))[None, :, None].expand(1, 2, 4000)
    actions = sample_actions(logits, g)
    assert abs(actions.float().mean().item() - 0.9) < 0.03


# -- toy environment ------------------------------------------------------------------------------
# An episode is a "video" of 3 clips of 6 tokens; the policy is a free table of logits (3 clips, K=4, 6
# tokens); the reward of a clip is 4^Dice(one-hot action, ground truth) - 1. The optimal policy puts all
# mass on the ground truth (Dice = 1, reward 3 per clip, the maximum).
K, N, CLIPS = 4, 6, 3
TRUTH = torch.tensor([[0, 0, 1, 1, 2, 2], [2, 3, 3, 3, 1, 1], [0, 1, 2, 3, 3, 3]])


def clip_reward(actions: torch.Tensor, k: int) -> torch.Tensor:
    onehot = F.one_hot(actions, K).permute(0, 2, 1).float()
    return dice_reward(dice_coefficient(onehot, TRUTH[k][None], torch.ones(1, N, dtype=torch.bool)))


@pytest.mark.parametrize("mode", ["td", "mc"])
def test_reinforce_converges_to_the_optimal_policy(mode: str) -> None:
    torch.manual_seed(0)
    logits = torch.zeros(CLIPS, K, N, requires_grad=True)
    critic = torch.zeros(CLIPS, requires_grad=True)  # V(clip k), the baseline
    opt = torch.optim.Adam([logits, critic], lr=0.1)
    for _ in range(300):
        rewards, log_probs = [], []
        for k in range(CLIPS):
            a = sample_actions(logits[k][None])
            rewards.append(clip_reward(a, k)[0])
            log_probs.append(action_log_prob(logits[k][None], a, torch.ones(1, N, dtype=torch.bool))[0])
        r, lp = torch.stack(rewards), torch.stack(log_probs)
        target = td_targets(r, critic, 0.9) if mode == "td" else discounted_returns(r, 0.9)
        advantage = target - critic
        loss = reinforce_loss(lp, advantage).sum() + ((target.detach() - critic) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy = torch.softmax(logits.detach(), dim=1)
    assert torch.equal(policy.argmax(dim=1), TRUTH)
    assert policy.gather(1, TRUTH[:, None, :]).min() > 0.9
    # the critic learned the value of the optimal policy: 3 per clip, discounted over the remaining clips
    assert torch.allclose(critic.detach(), torch.tensor([3 + 2.7 + 2.43, 3 + 2.7, 3.0]), atol=0.5)


def test_reward_weighted_supervision_converges_to_the_truth() -> None:
    """The release's objective on the same toy: CE weighted by the soft-Dice reward (without gradient)."""
    torch.manual_seed(0)
    logits = torch.zeros(CLIPS, K, N, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(100):
        with torch.no_grad():
            probs = torch.softmax(logits, dim=1)
            reward = dice_reward(dice_coefficient(probs, TRUTH, torch.ones(CLIPS, N, dtype=torch.bool)))
        ce = F.cross_entropy(logits, TRUTH, reduction="none").mean(dim=1)
        loss = (ce * reward).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(logits.argmax(dim=1), TRUTH)
    # from 0.53-0.70 (uniform policy) to above 2: a class absent from a clip counts fully only once its
    # probability is below ~1e-3 (the Dice smoothing term is 1e-5)
    assert reward.min() > 2.0
