"""Losses of ActionFormer: sigmoid focal loss and the centre-based 1-D DIoU loss."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Reduction = Literal["none", "mean", "sum"]


def _reduce(loss: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else loss.sum() * 0.0
    return loss


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: Reduction = "none",
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) on independent sigmoids, computed in float32.

    ``loss = a_t * BCE(logits, targets) * (1 - p_t) ** gamma`` with ``p_t = p y + (1 - p)(1 - y)`` and
    ``a_t = alpha y + (1 - alpha)(1 - y)`` (``alpha < 0`` disables it). Targets may be soft.

    Args:
        logits, targets: same shape, e.g. ``(N, C)``.
    """
    x = logits.float()
    y = targets.float()
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return _reduce(loss, reduction)


def ctr_diou_loss_1d(
    pred_offsets: torch.Tensor,
    target_offsets: torch.Tensor,
    reduction: Reduction = "none",
    eps: float = 1e-8,
) -> torch.Tensor:
    """Distance-IoU loss (Zheng et al. 2020) for 1-D segments given as offsets from a shared centre point.

    A segment is ``(c - l, c + r)`` with ``l, r >= 0``; ``loss = 1 - IoU + (d / L)**2`` with ``d`` the
    distance between the two segment centres and ``L`` the length of the smallest enclosing segment.

    Args:
        pred_offsets, target_offsets: ``(N, 2)`` non-negative ``(left, right)`` offsets.
    """
    lp, rp = pred_offsets.float().unbind(-1)
    lg, rg = target_offsets.float().unbind(-1)
    inter = torch.minimum(lp, lg) + torch.minimum(rp, rg)
    union = (lp + rp) + (lg + rg) - inter
    iou = inter / union.clamp(min=eps)
    enclosing = torch.maximum(lp, lg) + torch.maximum(rp, rg)
    centre_dist = 0.5 * ((rp - lp) - (rg - lg))
    loss = 1.0 - iou + (centre_dist / enclosing.clamp(min=eps)) ** 2
    return _reduce(loss, reduction)
