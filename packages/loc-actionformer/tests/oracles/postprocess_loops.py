"""Decoding, multiclass soft-NMS and grid → seconds written as plain Python loops.

The soft-NMS follows the release's C++ loop: the first maximum wins, the other candidates are
decayed by ``exp(-iou^2 / sigma)`` and a decayed candidate under ``min_score`` is replaced by the
last remaining one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def loop_soft_nms(
    segs: torch.Tensor, scores: torch.Tensor, iou_thr: float, sigma: float, min_score: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian soft-NMS of one class, one selection per iteration; ``(segments, scores, input indices)``.

    ``iou_thr`` is unused by the Gaussian decay (the release passes it along).
    """
    segs, scores = segs.clone(), scores.clone()
    idx = torch.arange(len(scores))
    n = len(scores)
    out_segs, out_scores, out_idx = [], [], []
    i = 0
    while i < n:
        j = i + int(torch.argmax(scores[i:n]))
        for t in (segs, scores, idx):
            t[[i, j]] = t[[j, i]]
        out_segs.append(segs[i].clone())
        out_scores.append(scores[i].clone())
        out_idx.append(int(idx[i]))
        x1, x2 = segs[i]
        rest = slice(i + 1, n)
        inter = (torch.minimum(segs[rest, 1], x2) - torch.maximum(segs[rest, 0], x1)).clamp(min=0)
        area_i = x2 - x1 + 1e-6
        area = segs[rest, 1] - segs[rest, 0] + 1e-6
        ovr = inter / (area_i + area - inter)
        scores[rest] *= torch.exp(-(ovr * ovr) / sigma)
        k = i + 1
        while k < n:  # drop low scores by moving the last remaining candidate into the slot
            low = torch.nonzero(scores[k:n] < min_score)
            if len(low) == 0:
                break
            k += int(low[0])
            n -= 1
            for t in (segs, scores, idx):
                t[k] = t[n]
        i += 1
    if not out_segs:
        return segs[:0], scores[:0], idx[:0]
    return torch.stack(out_segs), torch.stack(out_scores), torch.tensor(out_idx)


def loop_decode(
    points: Sequence[torch.Tensor],
    fpn_masks: Sequence[torch.Tensor],
    cls_logits: Sequence[torch.Tensor],
    offsets: Sequence[torch.Tensor],
    test_cfg: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Candidates of the first video of the batch, one point and class at a time:
    ``(segments (N, 2), scores (N,), labels (N,))`` on the feature grid."""
    tc = test_cfg
    segs_all, scores_all, labels_all = [], [], []
    for logit, off, pts, mask in zip(cls_logits, offsets, points, fpn_masks, strict=True):
        num_classes = logit.shape[-1]
        prob = (logit[0].float().sigmoid() * mask[0, :, None]).flatten()
        keep = torch.nonzero(prob > tc.pre_nms_thresh).squeeze(1)
        p, order = prob[keep].sort(descending=True, stable=True)
        k = min(tc.pre_nms_topk, keep.numel())
        for score, flat in zip(p[:k].tolist(), keep[order[:k]].tolist(), strict=True):
            t_idx, c = divmod(flat, num_classes)
            t, s = float(pts[t_idx, 0]), float(pts[t_idx, 3])
            left, right = float(off[0, t_idx, 0]), float(off[0, t_idx, 1])
            seg = (t - left * s, t + right * s)
            if seg[1] - seg[0] > tc.duration_thresh:
                segs_all.append(seg)
                scores_all.append(score)
                labels_all.append(c)
    return (
        torch.tensor(segs_all, dtype=torch.float32).reshape(-1, 2),
        torch.tensor(scores_all, dtype=torch.float32),
        torch.tensor(labels_all, dtype=torch.int64),
    )


def loop_postprocess(
    outputs: Any, test_cfg: Any, fps: float, stride: float, nframes: float, duration: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoding and multiclass soft-NMS as loops (no score voting), then seconds clipped to
    ``[0, duration]``; ``outputs`` = ``(points, masks, logits, offsets)`` of a batch of one."""
    tc = test_cfg
    segs, scores, labels = loop_decode(*outputs, tc)
    kept_s, kept_sc, kept_l = [], [], []
    for c in torch.unique(labels).tolist():
        sel = torch.nonzero(labels == c).squeeze(1)
        s, sc, _ = loop_soft_nms(segs[sel], scores[sel], tc.iou_threshold, tc.nms_sigma, tc.min_score)
        s, sc = s[: tc.max_seg_num], sc[: tc.max_seg_num]
        kept_s.append(s)
        kept_sc.append(sc)
        kept_l.append(torch.full((len(sc),), c, dtype=torch.int64))
    if not kept_s:
        return torch.zeros(0, 2, dtype=torch.float64), torch.zeros(0, dtype=torch.float64), labels[:0]
    s, sc, lab = torch.cat(kept_s), torch.cat(kept_sc), torch.cat(kept_l)
    order = torch.sort(sc, descending=True).indices[: tc.max_seg_num]
    secs = ((s[order].double() * stride + 0.5 * nframes) / fps).clamp(0, duration)
    return secs, sc[order].double(), lab[order]
