"""The supervised loss of one clip, as the release's ``SegmentationLoss`` computes it.

For each stage's frame scores ``p (B, K, W)`` of a clip, video ``b`` of the batch contributes

- cross-entropy: ``sum_t CE(p_bt, y_bt) / n_b / N_valid`` (``-100`` labels ignored), where ``n_b`` is
  the number of clips of video ``b`` (``precise_sliding_num``) and ``N_valid`` the number of labelled
  frames of the clip batch: summed over a video's clips this is about the video's mean frame loss;
- smoothing: ``mean_{k,t}(clamp((log_softmax p_{t+1} - log_softmax p_t.detach())^2, 0, 16) · m_{t+1}) / n_b / B``
  (MS-TCN's truncated MSE; the mean runs over all ``K (W - 1)`` entries, masked ones as zeros);

``L_sup = sum_stages (CE + smooth_weight · smooth)``. The functions return the per-video terms ``(B,)``
so that rewards can weight each video (the release trains with one video per batch, where both agree).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tal.stream_rl.clips import IGNORE_INDEX

EPS = 1e-10
"""The release's ``elps``."""


def cross_entropy_terms(scores: torch.Tensor, labels: torch.Tensor, clips_per_video: torch.Tensor) -> torch.Tensor:
    """Per-video cross-entropy terms ``(B,)`` of one stage; their sum is the release's CE of the clip batch.

    Args:
        scores: ``(B, K, W)`` frame scores.
        labels: ``(B, W)`` int64, ``-100`` where unlabelled.
        clips_per_video: ``(B,)`` clips of each video (``precise_sliding_num``).
    """
    ce = F.cross_entropy(scores, labels, ignore_index=IGNORE_INDEX, reduction="none")  # (B, W)
    n_valid = (labels != IGNORE_INDEX).sum()
    return ce.sum(dim=-1) / (clips_per_video.to(ce.dtype) + EPS) / (n_valid.to(ce.dtype) + EPS)


def smoothing_terms(scores: torch.Tensor, frame_mask: torch.Tensor, clips_per_video: torch.Tensor) -> torch.Tensor:
    """Per-video smoothing terms ``(B,)`` of one stage; their sum is the release's smoothing loss.

    Args:
        scores: ``(B, K, W)`` frame scores.
        frame_mask: ``(B, W)`` bool.
        clips_per_video: ``(B,)``.
    """
    b = scores.shape[0]
    diff = F.mse_loss(
        F.log_softmax(scores[:, :, 1:], dim=1), F.log_softmax(scores.detach()[:, :, :-1], dim=1), reduction="none"
    )
    diff = torch.clamp(diff, min=0, max=16) * frame_mask[:, None, 1:].to(diff.dtype)
    per_video = diff.reshape(b, -1).mean(dim=-1) / (clips_per_video.to(diff.dtype) + EPS)
    return per_video / b


def supervised_terms(
    stage_scores: torch.Tensor,
    labels: torch.Tensor,
    frame_mask: torch.Tensor,
    clips_per_video: torch.Tensor,
    smooth_weight: float = 0.15,
) -> torch.Tensor:
    """``L_sup`` of a clip batch per video ``(B,)``: every stage's CE plus ``smooth_weight`` × smoothing.

    ``stage_scores`` is ``(S, B, K, W)``; see the module docstring for the normalisation.
    """
    total = stage_scores.new_zeros(stage_scores.shape[1])
    for scores in stage_scores:
        total = total + cross_entropy_terms(scores, labels, clips_per_video)
        if smooth_weight > 0:
            total = total + smooth_weight * smoothing_terms(scores, frame_mask, clips_per_video)
    return total
