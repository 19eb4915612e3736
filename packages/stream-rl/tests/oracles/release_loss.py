"""The release's clip loss and reward (``SegmentationLoss``, ``RLPGSegmentationLoss``) as plain loops.

Written from the formulas of Thinksky5124/SVTAS ``svtas/model/losses/{segmentation_loss,rl_dpg_loss}.py``:
one Python loop per sum, float64, batch-level values exactly as the release forms them.
"""

from __future__ import annotations

import math

import torch


def log_softmax_column(scores: torch.Tensor, t: int) -> list[float]:
    """log-softmax over classes of frame ``t`` of ``scores (K, W)``."""
    col = [float(scores[c, t]) for c in range(scores.shape[0])]
    m = max(col)
    z = m + math.log(sum(math.exp(v - m) for v in col))
    return [v - z for v in col]


def release_clip_loss(
    stage_scores: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, clips: list[int], smooth_weight: float
) -> float:
    """``SegmentationLoss.forward`` of a clip batch: ``(S, B, K, W)`` scores, ``(B, W)`` labels and masks."""
    eps = 1e-10
    s_n, b_n, k_n, w_n = stage_scores.shape
    n_valid = sum(1 for b in range(b_n) for t in range(w_n) if int(labels[b, t]) != -100)
    total = 0.0
    for s in range(s_n):
        ce_sum = 0.0
        for b in range(b_n):
            per_video = 0.0
            for t in range(w_n):
                y = int(labels[b, t])
                if y != -100:
                    per_video -= log_softmax_column(stage_scores[s, b], t)[y]
            ce_sum += per_video / (clips[b] + eps)
        total += ce_sum / (n_valid + eps)
        if smooth_weight > 0:
            smooth = 0.0
            for b in range(b_n):
                acc = 0.0
                for t in range(1, w_n):
                    now = log_softmax_column(stage_scores[s, b], t)
                    before = log_softmax_column(stage_scores[s, b], t - 1)
                    for c in range(k_n):
                        acc += min(max((now[c] - before[c]) ** 2, 0.0), 16.0) * float(masks[b, t])
                smooth += acc / (k_n * (w_n - 1)) / (clips[b] + eps)
            total += smooth_weight * smooth / b_n
    return total


def release_dice(
    probs: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, smooth: float = 1e-5, exponent: float = 2.0
) -> float:
    """The release's ``dice_loss`` (a Dice coefficient) of ``probs (B, K, W)``, averaged over the batch."""
    b_n, k_n, w_n = probs.shape
    per_video = []
    for b in range(b_n):
        acc = 0.0
        for c in range(k_n):
            num, den = 0.0, 0.0
            for t in range(w_n):
                y = int(labels[b, t])
                target = 1.0 if min(max(y, 0), k_n - 1) == c else 0.0
                valid = 1.0 if (y != -100 and bool(masks[b, t])) else 0.0
                p = float(probs[b, c, t])
                num += p * target * valid
                den += p**exponent + target**exponent
            acc += (2 * num + smooth) / (den + smooth)
        per_video.append(acc / k_n)
    return sum(per_video) / b_n


def release_reward(
    probs: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, beta1: float = 4.0, beta2: float = -1.0
) -> float:
    """``beta1 ** Dice + beta2`` of a clip batch."""
    return beta1 ** release_dice(probs, labels, masks) + beta2
