"""Rewards and policy-gradient objectives of SVTAS-RL.

The policy is the head's per-token class distribution of a clip (the last stage's softmax); an action
labels every token of the clip, and so every frame (tokens are repeated to frames).

**Release objective** (``RLPGSegmentationLoss``, the default): the clip's supervised loss weighted by
a reward computed without gradient from the clip's soft prediction,
``loss = L_sup · (beta1 ** Dice(softmax(last stage), one-hot labels) + beta2)`` with ``beta1 = 4``,
``beta2 = -1`` (``r ∈ [0, 3]``). Dice is the release's multi-class soft Dice (:func:`dice_coefficient`).

**Policy-gradient options** (the two forms the paper describes): sample an action per token,
reward it with the same ``beta1 ** Dice + beta2`` on the hard (one-hot) action, and follow
REINFORCE ``-(advantage) · log pi(action)`` with a learned baseline (a critic ``V(clip)``):

- per clip, temporal-difference style: ``A_k = r_k + gamma · V_{k+1} − V_k`` (``V`` after the last
  clip is 0), the critic regressed on ``r_k + gamma · V_{k+1}``;
- per video, Monte-Carlo: ``A_k = G_k − V_k`` with the return ``G_k = sum_{j >= k} gamma^(j-k) r_j``
  over the video's remaining clips, the critic regressed on ``G_k``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tal.stream_rl.clips import IGNORE_INDEX


def dice_coefficient(
    probs: torch.Tensor,
    labels: torch.Tensor,
    frame_mask: torch.Tensor,
    smooth: float = 1e-5,
    exponent: float = 2.0,
) -> torch.Tensor:
    """The release's multi-class Dice of each video, ``(B,)``.

    For every class ``c``: ``(2 sum_t p_ct y_ct v_t + smooth) / (sum_t (p_ct^e + y_ct^e) + smooth)``,
    averaged over classes, where ``y`` is the one-hot of ``clamp(labels, 0, K - 1)`` and ``v`` marks
    labelled, unmasked frames. As in the release only the numerator is masked: padded frames (label
    ``-100``, one-hot of class 0) add ``p^e + 1`` to class 0's denominator and ``p^e`` to the others'.

    Args:
        probs: ``(B, K, W)`` per-frame class probabilities (softmax scores, or one-hot actions).
        labels: ``(B, W)`` int64 with ``-100`` for unlabelled frames.
        frame_mask: ``(B, W)`` bool.
    """
    k = probs.shape[1]
    target = F.one_hot(labels.clamp(0, k - 1), k).permute(0, 2, 1).to(probs.dtype)  # (B, K, W)
    valid = ((labels != IGNORE_INDEX) & frame_mask).to(probs.dtype)[:, None, :]
    num = 2.0 * (probs * target * valid).sum(dim=-1) + smooth
    den = (probs.pow(exponent) + target.pow(exponent)).sum(dim=-1) + smooth
    return (num / den).mean(dim=1)


def dice_reward(dice: torch.Tensor, beta1: float = 4.0, beta2: float = -1.0) -> torch.Tensor:
    """``beta1 ** dice + beta2`` (the release's defaults give ``4^Dice − 1 ∈ [0, 3]``)."""
    return torch.pow(torch.as_tensor(beta1, dtype=dice.dtype, device=dice.device), dice) + beta2


def sample_actions(token_scores: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One action per token from ``softmax(token_scores (B, K, N))``: ``(B, N)`` int64."""
    b, k, n = token_scores.shape
    probs = F.softmax(token_scores.detach().float(), dim=1).permute(0, 2, 1).reshape(-1, k)
    return torch.multinomial(probs, 1, generator=generator).view(b, n)


def action_log_prob(token_scores: torch.Tensor, actions: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Mean log-probability of ``actions (B, N)`` over each clip's valid tokens, ``(B,)``."""
    log_pi = F.log_softmax(token_scores, dim=1).gather(1, actions[:, None, :]).squeeze(1)  # (B, N)
    m = token_mask.to(log_pi.dtype)
    return (log_pi * m).sum(dim=-1) / m.sum(dim=-1).clamp(min=1.0)


def reinforce_loss(log_prob: torch.Tensor, advantage: torch.Tensor) -> torch.Tensor:
    """REINFORCE surrogate ``-advantage · log pi`` (advantage without gradient), per element."""
    return -advantage.detach() * log_prob


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Monte-Carlo returns over clips: ``rewards (K, ...)`` → ``G_k = sum_{j>=k} gamma^(j-k) r_j``, same shape."""
    returns = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0]) if rewards.shape[0] else rewards.new_zeros(())
    for k in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[k] + gamma * running
        returns[k] = running
    return returns


def td_targets(rewards: torch.Tensor, values: torch.Tensor, gamma: float) -> torch.Tensor:
    """One-step TD targets ``r_k + gamma · V_{k+1}`` (0 after the last clip); ``(K, ...)``, no gradient."""
    nxt = torch.zeros_like(values)
    nxt[:-1] = values[1:].detach()
    return rewards + gamma * nxt
