"""TST's set-prediction loss (``tst/losses.py``): summed over both decoder outputs,

* cross-entropy over ``n_classes + 1`` classes for every predicted segment: a matched segment's target
  is its true segment's class, an unmatched one's the no-action class (index ``n_classes``, weight
  ``bg_weight``); PyTorch's weighted mean;
* sigmoid focal loss (alpha 0.25, gamma 2) of the matched masks, averaged over frames, summed, divided
  by the number of true segments;
* dice loss (``1 - (2 Σ p t + 1) / (Σ p + Σ t + 1)``) of the matched masks, summed, divided likewise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tal.seg_tst.modeling.segments import Segmentation
from tal.seg_tst.modeling.tst import TSTOutput


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, num_masks: float, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """``logits, targets (M, T)`` → ``sum_m mean_t(alpha_t (1 - p_t)^gamma BCE) / num_masks``."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean(1).sum() / num_masks


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """``logits, targets (M, T)`` → ``sum_m (1 - (2 Σ p t + 1) / (Σ p + Σ t + 1)) / num_masks``."""
    prob = logits.sigmoid()
    num = 2 * (prob * targets).sum(-1)
    den = prob.sum(-1) + targets.sum(-1)
    return (1 - (num + 1) / (den + 1)).sum() / num_masks


def segment_class_loss(
    cls_logits: torch.Tensor, pred_idx: torch.Tensor, target_classes: torch.Tensor, n_classes: int, bg_weight: float
) -> torch.Tensor:
    """``cls_logits (S, n_classes + 1)``; segments ``pred_idx`` have classes ``target_classes``, the rest no-action."""
    targets = torch.full((cls_logits.shape[0],), n_classes, dtype=torch.int64, device=cls_logits.device)
    targets[pred_idx.to(cls_logits.device)] = target_classes.to(cls_logits.device)
    weight = torch.ones(n_classes + 1, device=cls_logits.device, dtype=cls_logits.dtype)
    weight[-1] = bg_weight
    return F.cross_entropy(cls_logits, targets, weight)


def tst_loss(
    output: TSTOutput,
    gt: Segmentation,
    matches: tuple[torch.Tensor, torch.Tensor],
    n_classes: int,
    bg_weight: float = 0.1,
) -> dict[str, torch.Tensor]:
    """``{"loss", "cls_loss", "focal_loss", "dice_loss"}``: ``loss`` is the sum over decoder outputs of
    CE + focal + dice; the parts are averaged over decoder outputs (as the release logs them)."""
    pred_idx, gt_idx = (m.to(output.segment_cls.device) for m in matches)
    num_masks = float(gt.num_segments)
    frame_segment = gt.frame_segment.to(output.mask_features.device)
    targets = (frame_segment.unsqueeze(0) == gt_idx.unsqueeze(1)).to(output.mask_features.dtype)  # (M, T)
    target_classes = gt.labels.to(pred_idx.device)[gt_idx]
    parts: dict[str, list[torch.Tensor]] = {"cls_loss": [], "focal_loss": [], "dice_loss": []}
    n_dec = output.segment_cls.shape[0]
    for d in range(n_dec):
        masks = output.masks_of(d, pred_idx)
        parts["cls_loss"].append(
            segment_class_loss(output.segment_cls[d, 0], pred_idx, target_classes, n_classes, bg_weight)
        )
        parts["focal_loss"].append(sigmoid_focal_loss(masks, targets, num_masks))
        parts["dice_loss"].append(dice_loss(masks, targets, num_masks))
    total = sum(sum(v) for v in parts.values())
    out = {k: torch.stack(v).mean() for k, v in parts.items()}
    out["loss"] = total  # type: ignore[assignment]
    return out
