"""Pure-Python oracle of ActionFormer's post-processing NMS semantics.

Written for these tests from the behaviour of happyharrycn/actionformer_release
(``libs/utils/nms.py`` and its C++ ``nms_1d_cpu`` / ``softnms_1d_cpu``), as
facts, not code:

* every NMS loop runs in float32 with float32 thresholds; segment area is
  ``(x2 - x1) + 1e-6`` and overlap ``inter / (area_i + area_j - inter)``;
* Gaussian decay is ``expf(-(ovr * ovr) / sigma)``, linear ``1 - ovr`` and
  hard ``0``, the last two only when ``ovr >= iou_threshold``;
* soft-NMS: scan for the first maximum (strict ``<`` comparison) from the
  current slot, swap it into the slot, record it, decay every later slot and,
  when a score drops below ``min_score``, copy the last slot into it, shrink
  the array and look at the same slot again;
* hard NMS: ``torch.sort(scores, descending=True)`` order (ties as the CPU sort
  leaves them), a candidate is dropped when ``ovr >= iou_threshold`` against an
  earlier kept one; before it, ``scores > min_score`` is kept when ``min_score > 0``;
* ``batched_nms``: classes from ``torch.unique`` (ascending), members in input
  order; each class capped at ``max_seg_num``; voting only for class-agnostic
  NMS with weights ``(iou >= thr) * score * iou``; final
  ``torch.sort(scores, descending=True)`` and cut to ``max_seg_num``.

The one intended difference from the original: IoUs whose denominator is zero
(degenerate segments) are 0 here, where the original produces NaN.

Scalars are numpy float32 and the exponential is the C library's ``expf`` (the
function the original calls), so the float32 oracle is bit-exact.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np
import torch

_libm_path = ctypes.util.find_library("m")
_libm = ctypes.CDLL(_libm_path) if _libm_path else None
if _libm is not None:
    _libm.expf.restype = ctypes.c_float
    _libm.expf.argtypes = [ctypes.c_float]


def _exp(x, ftype):
    if ftype is np.float32 and _libm is not None:
        return np.float32(_libm.expf(float(x)))
    return ftype(math.exp(float(x)))


def _overlap(ix1, ix2, ia, x1, x2, a, ftype):
    lo = x1 if ix1 < x1 else ix1
    hi = x2 if x2 < ix2 else ix2
    d = ftype(hi - lo)
    inter = d if ftype(0) < d else ftype(0)
    den = ftype(ftype(ia + a) - inter)
    return ftype(inter / den) if den > 0 else ftype(0)


def soft_nms(segs, scores, iou_threshold, sigma, min_score, method, ftype=np.float32):
    """Returns (indices in selection order, scores at selection)."""
    segs = np.asarray(segs, dtype=ftype).reshape(-1, 2)
    x1 = [ftype(v) for v in segs[:, 0]]
    x2 = [ftype(v) for v in segs[:, 1]]
    sc = [ftype(v) for v in np.asarray(scores, dtype=ftype)]
    area = [ftype(ftype(b - a) + ftype(1e-6)) for a, b in zip(x1, x2, strict=True)]
    ids = list(range(len(x1)))
    thr, sig, low = ftype(iou_threshold), ftype(sigma), ftype(min_score)
    out_ids, out_sc = [], []
    count = len(x1)
    i = 0
    while i < count:
        best, best_pos = sc[i], i
        for p in range(i + 1, count):
            if best < sc[p]:
                best, best_pos = sc[p], p
        for arr in (x1, x2, sc, area, ids):
            arr[i], arr[best_pos] = arr[best_pos], arr[i]
        out_ids.append(ids[i])
        out_sc.append(sc[i])
        p = i + 1
        while p < count:
            ovr = _overlap(x1[i], x2[i], area[i], x1[p], x2[p], area[p], ftype)
            if method == 2:
                weight = _exp(ftype(ftype(-(ftype(ovr * ovr))) / sig), ftype)
            elif method == 1:
                weight = ftype(1) - ovr if ovr >= thr else ftype(1)
            else:
                weight = ftype(0) if ovr >= thr else ftype(1)
            sc[p] = ftype(sc[p] * weight)
            if sc[p] < low:
                last = count - 1
                for arr in (x1, x2, sc, area, ids):
                    arr[p] = arr[last]
                count -= 1
                continue
            p += 1
        i += 1
    return out_ids[:count], out_sc[:count]


def hard_nms_sorted(segs, order, iou_threshold, ftype=np.float32):
    """Greedy NMS visiting ``order``; returns the kept indices (in visiting order)."""
    segs = np.asarray(segs, dtype=ftype).reshape(-1, 2)
    thr = ftype(iou_threshold)
    x1 = [ftype(segs[k, 0]) for k in order]
    x2 = [ftype(segs[k, 1]) for k in order]
    area = [ftype(ftype(b - a) + ftype(1e-6)) for a, b in zip(x1, x2, strict=True)]
    keep = [True] * len(order)
    for i in range(len(order)):
        if not keep[i]:
            continue
        for j in range(i + 1, len(order)):
            if keep[j] and _overlap(x1[i], x2[i], area[i], x1[j], x2[j], area[j], ftype) >= thr:
                keep[j] = False
    return [int(k) for k, flag in zip(order, keep, strict=True) if flag]


def nms(segs, scores, iou_threshold, ftype=np.float32):
    order = torch.sort(torch.as_tensor(np.asarray(scores, dtype=ftype)), descending=True).indices.tolist()
    return hard_nms_sorted(segs, order, iou_threshold, ftype)


def seg_voting(nms_segs, segs, scores, thr, ftype=np.float32):
    nms_segs = np.asarray(nms_segs, dtype=ftype).reshape(-1, 2)
    segs = np.asarray(segs, dtype=ftype).reshape(-1, 2)
    scores = np.asarray(scores, dtype=ftype)
    out = np.empty_like(nms_segs)
    thr = ftype(thr)
    for r, (s, e) in enumerate(nms_segs):
        tw = t1 = t2 = 0.0
        for (a, b), w0 in zip(segs, scores, strict=True):
            inter = max(ftype(min(e, b) - max(s, a)), ftype(0))
            den = ftype(ftype(ftype(e - s) + ftype(b - a)) - inter)
            iou = ftype(inter / den) if den != 0 else ftype(0)
            if iou >= thr:
                w = float(ftype(w0 * iou))
                tw += w
                t1 += w * float(a)
                t2 += w * float(b)
        out[r] = (t1 / tw, t2 / tw) if tw != 0 else (s, e)
    return out


def batched_nms(
    segs,
    scores,
    labels,
    iou_threshold,
    min_score,
    max_seg_num,
    use_soft_nms=True,
    multiclass=True,
    sigma=0.5,
    voting_thresh=0.75,
    method=2,
):
    """ActionFormer's batched_nms on CPU tensors; returns numpy (segs, scores, labels)."""
    segs = torch.as_tensor(segs)
    scores = torch.as_tensor(scores)
    labels = torch.as_tensor(labels)
    ftype = np.float64 if scores.dtype == torch.float64 or segs.dtype == torch.float64 else np.float32
    tdtype = torch.float64 if ftype is np.float64 else torch.float32
    segs = segs.to(tdtype)
    scores = scores.to(tdtype)
    if segs.shape[0] == 0:
        return np.zeros((0, 2), ftype), np.zeros((0,), ftype), np.zeros((0,), np.int64)

    def one_pass(idx):
        """NMS of the candidates idx (a list, input order); returns (kept ids, their scores)."""
        s = segs[idx].numpy()
        c = scores[idx].numpy()
        if use_soft_nms:
            local, new_sc = soft_nms(s, c, iou_threshold, sigma, min_score, method, ftype)
        else:
            cand = list(range(len(idx)))
            if min_score > 0:
                cand = [k for k in cand if c[k] > ftype(min_score)]
            order_local = torch.sort(torch.as_tensor(c[cand]), descending=True).indices.tolist()
            local = hard_nms_sorted(s, [cand[k] for k in order_local], iou_threshold, ftype)
            new_sc = [c[k] for k in local]
        if max_seg_num > 0:
            local, new_sc = local[:max_seg_num], new_sc[:max_seg_num]
        return [idx[k] for k in local], list(new_sc)

    kept, kept_sc = [], []
    if multiclass:
        for cls in torch.unique(labels).tolist():
            members = torch.where(labels == cls)[0].tolist()
            ids, sc = one_pass(members)
            kept += ids
            kept_sc += sc
    else:
        kept, kept_sc = one_pass(list(range(segs.shape[0])))
    out_segs = segs[kept].numpy().astype(ftype) if kept else np.zeros((0, 2), ftype)
    if not multiclass and voting_thresh > 0 and kept:
        out_segs = seg_voting(out_segs, segs.numpy(), scores.numpy(), voting_thresh, ftype)
    out_sc = np.asarray(kept_sc, dtype=ftype)
    order = torch.sort(torch.as_tensor(out_sc), descending=True).indices.tolist()[: min(max_seg_num, len(kept))]
    return out_segs[order], out_sc[order], labels[kept].numpy()[order] if kept else np.zeros((0,), np.int64)
