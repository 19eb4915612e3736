"""Slow, plain statements of the TST release's algorithms (loops over frames and segments, dense masks).

Written from the release's description (tst/tst_refiner.py, tst/utils.py, tst/matcher.py,
tst/predict.py of baiyang4/TST-action-segmentation), not copied: tests compare the vectorized code
against these, and ``benchmarks/seg_tst_refiner.py`` times them as the release-like baseline.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment


def runs_loop(labels: list[int]) -> list[tuple[int, int, int]]:
    """``(label, start, end_exclusive)`` of every run, one frame at a time."""
    out = []
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            out.append((labels[start], start, t))
            start = t
    return out


def segment_masks_loop(labels: list[int]) -> torch.Tensor:
    """``(S, T)`` one row per run, ones on its frames (the release builds these rows one by one)."""
    t_len = len(labels)
    rows = []
    for _, s, e in runs_loop(labels):
        row = torch.zeros(t_len)
        row[s:e] = 1
        rows.append(row)
    return torch.stack(rows)


def cross_attention_mask_loop(labels: list[int]) -> torch.Tensor:
    """``(S, T)`` bool: segment ``s`` sees the frames of segments ``s-1``, ``s``, ``s+1``."""
    seg = segment_masks_loop(labels)
    n = seg.shape[0]
    mask = torch.zeros_like(seg)
    for i in range(n):
        mask[i] = seg[i]
        if i > 0:
            mask[i] += seg[i - 1]
        if i < n - 1:
            mask[i] += seg[i + 1]
    return mask.bool()


def segment_pool_loop(labels: list[int], feats: torch.Tensor) -> torch.Tensor:
    """Mean of ``feats (T, C)`` over each run → ``(S, C)`` (one slice mean per run)."""
    return torch.stack([feats[s:e].mean(0) for _, s, e in runs_loop(labels)])


def sinusoid_loop(n: int, d: int) -> torch.Tensor:
    table = np.array([[pos / np.power(10000, 2 * (j // 2) / d) for j in range(d)] for pos in range(n)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.FloatTensor(table)


def dense_cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T / sqrt(D))`` with ``-inf`` outside ``mask (S, T)``, times ``v`` → ``(S, D_v)``."""
    att = q @ k.T / np.sqrt(q.shape[1])
    att = att.masked_fill(~mask, float("-inf"))
    return torch.softmax(att, -1) @ v


def refiner_forward_loop(refiner: torch.nn.Module, frame_features: torch.Tensor, frame_predictions: torch.Tensor):
    """The release's ``TSTRefiner.forward`` with its loops and dense masks, using ``refiner``'s weights.

    Returns ``(segment_cls (2, 1, S, K+1), segment_mask (2, 1, S, T))``.
    """
    r = refiner
    x = r.feat_down(frame_features[0].T)  # (T, inner)
    h = r.pixel_decoder.conv_in(x.T.unsqueeze(0))
    pd = []
    for layer in r.pixel_decoder.layers:
        h = h + layer.dropout(layer.conv_in(F.relu(layer.conv_dilated(h))))
        pd.append(h)
    mem1 = r.pd_proj(pd[-3][0].T)
    mem2 = r.pd_proj2(pd[-2][0].T)
    labels = frame_predictions[0].argmax(0).tolist()
    runs = runs_loop(labels)
    seg_labels = torch.tensor([lab for lab, _, _ in runs])
    pooled = segment_pool_loop(labels, r.feat_proj(x))
    onehot = torch.zeros(len(runs), r.n_classes)
    for i, lab in enumerate(seg_labels.tolist()):
        onehot[i, lab] = 1
    queries = torch.cat([pooled + r.onehot_proj(onehot), r.label_embedding(seg_labels)], 1)
    t_len = x.shape[0]
    fpos = sinusoid_loop(t_len, r.hidden_dim)
    mask = cross_attention_mask_loop(labels)

    def cross(block, tgt, memory):
        att = dense_cross_attention(tgt + queries, memory + fpos, memory, mask)
        tgt = block.norm2(tgt + block.dropout2(block.tgt2_linear(F.relu(att))))
        return block.norm3(tgt + block.dropout3(block.linear2(block.dropout(F.relu(block.linear1(tgt))))))

    tgt = cross(r.cross_attn, torch.zeros_like(queries), mem1)
    sa = r.self_attn
    spos = sinusoid_loop(len(runs), r.hidden_dim)
    qk = tgt + spos
    att = torch.softmax(qk @ qk.T / np.sqrt(qk.shape[1]), -1) @ tgt
    src2 = sa.conv_out(F.relu(att).T.unsqueeze(0))[0].T
    src = sa.norm1(tgt + sa.dropout1(src2))
    ref1 = sa.norm2(src + sa.dropout2(sa.linear2(sa.dropout(F.relu(sa.linear1(src))))))
    ref2 = cross(r.cross_attn2, ref1, mem2)
    refined = torch.stack([ref1, ref2]).unsqueeze(1)
    cls = r.class_head(refined)
    masks = torch.einsum("nbsc,bct->nbst", r.mask_head(refined), pd[-1])
    return cls, masks


def matcher_cost_loop(pred_labels: list[int], gt_labels: list[int]) -> torch.Tensor:
    """``(S, G)`` float32 cost of the release's matcher: ``-overlap / span`` by the four cases."""
    pm = segment_masks_loop(pred_labels)
    gm = segment_masks_loop(gt_labels)
    rows = []
    for i in range(pm.shape[0]):
        ps = int(torch.where(pm[i] == 1)[0][0])
        pe = int(torch.where(pm[i] == 1)[0][-1])
        row = []
        for j in range(gm.shape[0]):
            gs = int(torch.where(gm[j] == 1)[0][0])
            ge = int(torch.where(gm[j] == 1)[0][-1])
            overlap = int(((pm[i] + gm[j]) == 2).sum())
            if overlap == 0:
                score = 0.0
            elif ps <= gs and ge <= pe:
                score = overlap / max(pe - ps, 1)
            elif gs < ps and pe < ge:
                score = overlap / max(ge - gs, 1)
            elif gs < ps:
                score = overlap / max(pe - gs, 1)
            else:
                score = overlap / max(ge - ps, 1)
            row.append(-score)
        rows.append(row)
    return torch.tensor(rows)


def match_loop(pred_labels: list[int], gt_labels: list[int]) -> tuple[list[int], list[int]]:
    cost = matcher_cost_loop(pred_labels, gt_labels)
    rows, cols = linear_sum_assignment(cost)
    keep = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] != 0]
    return [r for r, _ in keep], [c for _, c in keep]


def hardmax_loop(segment_cls: torch.Tensor, action_idx: list[int]) -> torch.Tensor:
    """Frame by frame: paint each run of ``action_idx`` with its segment's argmax class (no-action dropped)."""
    pred_cls = torch.softmax(segment_cls[-1][0][:, :-1], dim=1).argmax(1)
    out = torch.zeros(len(action_idx), dtype=torch.long)
    start, k = 0, 0
    for t in range(1, len(action_idx)):
        if action_idx[t] != action_idx[t - 1]:
            out[start:t] = pred_cls[k]
            k += 1
            start = t
    out[start:] = pred_cls[min(k, len(pred_cls) - 1)]
    return out


def purge_loop(labels: list[int], value: int, diffact: bool = False) -> list[int]:
    """Both releases' purge on a Python list (DiffAct's last segment ends at ``T - 1``)."""
    out = list(labels)
    runs = runs_loop(labels)
    n = len(runs)
    for e, (_, s, t) in enumerate(runs):
        if diffact and e == n - 1:
            t -= 1
        if t - s > value:
            continue
        if n == 1:
            continue
        if e == 0:
            out[s:t] = [runs[1][0]] * (t - s)
        elif e == n - 1:
            out[s:t] = [runs[e - 1][0]] * (t - s)
        else:
            mid = s + (t - s) // 2
            out[s:mid] = [runs[e - 1][0]] * (mid - s)
            out[mid:t] = [runs[e + 1][0]] * (t - mid)
    return out
