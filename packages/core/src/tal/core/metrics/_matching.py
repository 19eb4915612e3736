"""Internals of :mod:`tal.core.metrics.localization`: tIoU blocks and the vectorized greedy matching.

Semantics (the ActivityNet / ActionFormer evaluator's) are documented there; this module only
reorganises the per-prediction loop so that numpy does the work.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_BLOCK = 1 << 15  # elements per block of the (predictions, instances) tIoU matrices


def tiou(ps: np.ndarray, pe: np.ndarray, gs: np.ndarray, ge: np.ndarray) -> np.ndarray:
    """The evaluator's tIoU, broadcasting: ``max(0, min(pe, ge) - max(ps, gs)) / ((ge - gs) + (pe - ps) - inter)``
    (``0/0`` gives NaN). Predictions ``(n, 1)``, instances ``(n, G)`` or ``(1, G)``."""
    inter = np.minimum(pe, ge)
    inter -= np.maximum(ps, gs)
    np.clip(inter, 0, None, out=inter)
    union = (ge - gs) + (pe - ps)
    union -= inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.divide(inter, union, out=inter)


def stable_argsort(x: np.ndarray) -> np.ndarray:
    """``np.argsort(x, kind="stable")`` (NaN last), via the faster unstable sort plus a fix-up of ties."""
    n = len(x)
    order = np.argsort(x)
    xs = x[order]
    tie = xs[1:] == xs[:-1]
    nan = np.isnan(xs)
    tie |= nan[1:] & nan[:-1]
    if not tie.any():
        return order
    run = np.cumsum(np.concatenate([[True], ~tie])) - 1  # equal values share a run
    return order[np.argsort(run * n + order)]  # unique keys: order inside a run by index


def small_int(x: np.ndarray, bound: int) -> np.ndarray:
    """``x`` (values in ``[0, bound)``) in the narrowest dtype (stable argsort is a radix sort then)."""
    for dt in (np.int8, np.int16, np.int32):
        if bound <= np.iinfo(dt).max:
            return x.astype(dt)
    return x


def _runs(x: np.ndarray) -> np.ndarray:
    """Start index of every run of equal values of ``x`` (non-empty)."""
    return np.flatnonzero(np.concatenate([[True], x[1:] != x[:-1]]))


def match(
    order: np.ndarray,
    ocls: np.ndarray,
    ovid: np.ndarray,
    pseg: np.ndarray,
    gcls: np.ndarray,
    gv: np.ndarray,
    gseg: np.ndarray,
    n_vid: int,
    n_cls: int,
    thr: np.ndarray,
    ks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching and Recall@kx coverage of all classes, videos and thresholds at once.

    A prediction only competes for ground truth of its own (class, video) group. tIoUs are computed
    per bucket of groups with similar ground-truth counts (padded ``(n, G)`` blocks stay small) and
    reduced to each prediction's candidates (tIoU >= the lowest threshold) in preference order;
    :func:`_resolve` then matches everything at once.

    Returns:
        tp: ``(n, T)`` bool per prediction of ``order``; covered: ``(C, T, K)`` instances covered by
        the top ``k·n`` predictions of their group (Recall@kx numerators).
    """
    n, n_t, n_k = len(order), len(thr), len(ks)
    tp = np.zeros((n, n_t), bool)
    covered = np.zeros((n_cls, n_t, n_k))
    if n == 0 or len(gv) == 0:
        return tp, covered
    # Prediction groups (class, video), each in evaluation order; rank = position inside the group.
    pkey = ocls * n_vid + ovid
    by_video = np.argsort(small_int(ovid, n_vid), kind="stable")
    by_group = by_video[np.argsort(small_int(ocls[by_video], n_cls), kind="stable")]  # stable by (class, video)
    sk = pkey[by_group]
    gfirst = _runs(sk)
    gsize = np.diff(np.append(gfirst, n))
    group_of = np.repeat(np.arange(len(gfirst)), gsize)  # of by_group entries
    rank = np.arange(n) - gfirst[group_of]
    # Ground-truth groups, each in input order.
    gkey = gcls * n_vid + gv
    gt_order = np.argsort(gkey, kind="stable")
    gsk = gkey[gt_order]
    gt_first = _runs(gsk)
    gt_size = np.diff(np.append(gt_first, len(gsk)))
    pos = np.minimum(np.searchsorted(gsk[gt_first], sk[gfirst]), len(gt_first) - 1)
    n_g = np.where(gsk[gt_first][pos] == sk[gfirst], gt_size[pos], 0)  # 0: all false positives

    log_g = np.where(n_g > 0, np.ceil(np.log2(np.maximum(n_g, 1))), -1).astype(np.int64)
    entry_bucket = log_g[group_of]
    by_bucket = np.argsort(small_int(entry_bucket + 1, 66), kind="stable")  # groups stay contiguous
    cuts = np.searchsorted(entry_bucket[by_bucket], np.arange(-1, int(log_g.max()) + 2))
    t_min = thr.min()
    singles: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, instance, key)
    multis: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, (r, D) instances, (r, D) keys)
    for b in range(int(log_g.max()) + 1):
        rows = by_bucket[cuts[b + 1] : cuts[b + 2]]  # entries of by_group whose group has 2^(b-1) < G <= 2^b
        if len(rows) == 0:
            continue
        width = 1 << b
        starts = _runs(group_of[rows])
        groups = group_of[rows[starts]]
        local = np.repeat(np.arange(len(groups)), np.diff(np.append(starts, len(rows))))
        colvalid = np.arange(width)[None, :] < n_g[groups][:, None]  # (g, W)
        gid = gt_order[np.where(colvalid, gt_first[pos[groups]][:, None] + np.arange(width), 0)]  # (g, W)
        gs, ge = gseg[gid, 0], gseg[gid, 1]
        p_all = order[by_group[rows]]
        step = max(1, _BLOCK // width)  # cache-sized blocks of rows: large temporaries are slow
        for c0 in range(0, len(rows), step):
            loc = local[c0 : c0 + step]
            p = p_all[c0 : c0 + step]
            iou = tiou(pseg[p, 0][:, None], pseg[p, 1][:, None], gs[loc], ge[loc])
            np.nan_to_num(iou, copy=False, nan=np.inf)  # a NaN tIoU never stops the evaluator's scan
            key = np.where(colvalid[loc], iou, -np.inf)
            n_cand = np.count_nonzero(key >= t_min, axis=1)  # rows without are false positives everywhere
            one = np.flatnonzero(n_cand == 1)  # the usual case: the only candidate is the maximum
            j = key[one].argmax(axis=1)
            singles.append((rows[c0 + one], gid[loc[one], j], key[one, j]))
            many = np.flatnonzero(n_cand > 1)
            if len(many):  # candidates by descending key, ties: the later instance first
                k = key[many]
                by_key = np.argsort(k, axis=1, kind="stable")[:, ::-1][:, : int(n_cand[many].max())]
                multis.append((rows[c0 + many], gid[loc[many][:, None], by_key], np.take_along_axis(k, by_key, 1)))
    if not singles:
        return tp, covered  # no prediction shares a (class, video) with ground truth
    depth = max([part[1].shape[1] for part in multis], default=1)
    rows1 = np.concatenate([part[0] for part in singles])
    rows_m = np.concatenate([part[0] for part in multis]) if multis else np.zeros(0, np.int64)
    won1, won_m, first_hit = _resolve(
        (rows1, np.concatenate([part[1] for part in singles]), np.concatenate([part[2] for part in singles])),
        (
            rows_m,
            np.concatenate([np.pad(part[1], ((0, 0), (0, depth - part[1].shape[1]))) for part in multis])
            if multis
            else np.zeros((0, depth), np.int64),
            np.concatenate(
                [np.pad(part[2], ((0, 0), (0, depth - part[2].shape[1])), constant_values=-np.inf) for part in multis]
            )
            if multis
            else np.zeros((0, depth)),
        ),
        rank,
        thr,
        len(gv),
    )
    tp[by_group[rows1]] = won1
    tp[by_group[rows_m]] = won_m
    # Recall@kx: instance i of a group with n instances is covered at k when first_hit < k * n.
    n_in_group = np.empty(len(gv), np.int64)
    n_in_group[gt_order] = np.repeat(gt_size, gt_size)
    hit = first_hit[gt_order, :, None] < ks[None, None, :] * n_in_group[gt_order, None, None]  # (M, T, K)
    cls_first = np.searchsorted(gcls[gt_order], np.arange(n_cls))  # gt_order is class-major; no class is empty
    covered[:] = np.add.reduceat(hit.astype(np.int64), cls_first, axis=0)
    return tp, covered


def _first_per_instance(inst: np.ndarray, row: np.ndarray, counts: Sequence[np.ndarray], n_t: int) -> list[np.ndarray]:
    """Rows (``row`` gives evaluation order inside a group) with one instance ``inst`` each: for each
    ``count`` (the row passes the ascending thresholds ``[0, count)``) an ``(m, T)`` bool mask, the
    row is the first of its instance to pass threshold ``t``."""
    if len(inst) == 0:
        return [np.zeros((0, n_t), bool) for _ in counts]
    o = np.argsort(inst * (int(row.max()) + 1) + row)  # unique keys: by instance, then row
    io = inst[o]
    head = np.concatenate([[True], io[1:] != io[:-1]])
    base = (np.cumsum(head) - 1) * (n_t + 1)  # separates instances: an exact segmented running max
    t_idx = np.arange(n_t)[None, :]
    masks = []
    for count in counts:
        co = count[o]
        before = np.concatenate([[0], np.maximum.accumulate(base + co)[:-1]]) - base
        before[head] = 0
        mask = np.empty((len(inst), n_t), bool)
        mask[o] = (t_idx >= before[:, None]) & (t_idx < co[:, None])
        masks.append(mask)
    return masks


def _resolve(
    single: tuple[np.ndarray, np.ndarray, np.ndarray],
    multi: tuple[np.ndarray, np.ndarray, np.ndarray],
    rank: np.ndarray,
    thr: np.ndarray,
    n_inst: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy lock matching and best covering rank, for all groups and thresholds at once.

    Predictions are identified by a row number that follows evaluation order inside each (class,
    video) group. Each takes the free candidate of highest preference whose key passes the threshold.

    - At a threshold where an instance is only wanted by predictions with a single passing
      candidate, the first of them wins it (a slot passes a prefix of the ascending thresholds).
    - The rest ("tangled": some prediction has several passing candidates) is resolved in waves: a
      prediction's current choice is final when no earlier unresolved prediction could still take
      that instance (choices only shrink as instances get locked); the first unresolved prediction
      of a group always resolves, so conflict chains, not group sizes, set the number of waves.

    Args:
        single: ``(rows (m1,), instance (m1,), key (m1,))`` of predictions with one candidate; keys
            are tIoU with NaN as +inf.
        multi: ``(rows (m2,), instances (m2, D), keys (m2, D))``, candidates by preference, unused
            slots with key -inf.
        rank: position in the group, indexed by row; thr: ``(T,)`` ascending; n_inst: instances.

    Returns:
        won1 ``(m1, T)``, won2 ``(m2, T)`` true positives; first_hit ``(n_inst, T)``: best rank of a
        prediction with a real tIoU >= thr (int64 max when none).
    """
    rows1, c1, k1 = single
    rows2, c2, k2 = multi
    m1, n_t = len(rows1), len(thr)
    t_idx = np.arange(n_t)
    first_hit = np.full(n_inst * n_t, np.iinfo(np.int64).max)

    pass2 = k2[:, None, :] >= thr[None, :, None]  # (m2, T, D), a prefix of the slots
    lock2 = c2[:, None, :] * n_t + t_idx[None, :, None]  # flat (instance, threshold)
    rows = np.concatenate([rows1, rows2])
    c0 = np.concatenate([c1, c2[:, 0]])  # each prediction's best candidate
    k0 = np.concatenate([k1, k2[:, 0]])
    n_pass0 = np.searchsorted(thr, k0, side="right")
    first0, cover0 = _first_per_instance(c0, rows, [n_pass0, np.where(np.isfinite(k0), n_pass0, 0)], n_t)
    lock0 = c0[:, None] * n_t + t_idx[None, :]  # (m, T)

    # Recall: the first row covering each (instance, threshold) with its best candidate, or with another.
    first_hit[lock0[cover0]] = np.broadcast_to(rank[rows][:, None], cover0.shape)[cover0]
    hit2 = pass2[:, :, 1:] & np.isfinite(k2[:, 1:])[:, None, :]
    np.minimum.at(first_hit, lock2[:, :, 1:][hit2], np.broadcast_to(rank[rows2][:, None, None], hit2.shape)[hit2])

    # Several passing candidates at a threshold: those (instance, threshold) are tangled. Elsewhere
    # the first prediction passing a threshold with its best candidate wins it.
    several = pass2[:, :, 1] if pass2.shape[2] > 1 else np.zeros(pass2.shape[:2], bool)  # (m2, T)
    tangled = np.zeros(n_inst * n_t, bool)
    tangled[lock2[several][pass2[several]]] = True
    pending = (t_idx[None, :] < n_pass0[:, None]) & tangled[lock0]
    won = (first0 & ~pending).reshape(-1)

    # Tangled pairs (prediction, threshold) in waves, in row-major order.
    a, t = np.nonzero(pending)
    order = np.argsort(rows[a] * n_t + t)
    a, t = a[order], t[order]
    width = max(int(pass2[:, 0].sum(axis=1).max()) if len(rows2) else 1, 1)  # most passing slots
    lock_w = np.zeros((len(a), width), np.int64)
    ok_w = np.zeros((len(a), width), bool)
    is1 = a < m1
    lock_w[is1, 0] = lock0[a[is1], t[is1]]
    ok_w[is1, 0] = True
    lock_w[~is1] = lock2[a[~is1] - m1, t[~is1], :width]
    ok_w[~is1] = pass2[a[~is1] - m1, t[~is1], :width]
    where = a * n_t + t
    locked = np.zeros(n_inst * n_t, bool)
    holder = np.empty(n_inst * n_t, np.int64)
    while len(where):
        n_u = len(where)
        free = ok_w & ~locked[lock_w]
        pick = free.argmax(axis=1)[:, None]
        has = np.take_along_axis(free, pick, axis=1)[:, 0]
        choice = np.take_along_axis(lock_w, pick, axis=1)[:, 0]
        r, s = np.nonzero(free)  # the first pair that could still take each instance
        holder[lock_w[r, s]] = n_u
        np.minimum.at(holder, lock_w[r, s], r)
        final = has & (holder[choice] == np.arange(n_u))
        won[where[final]] = True
        locked[choice[final]] = True
        keep = has & ~final
        where, lock_w, ok_w = where[keep], lock_w[keep], ok_w[keep]
    return won[: m1 * n_t].reshape(m1, n_t), won[m1 * n_t :].reshape(-1, n_t), first_hit.reshape(n_inst, n_t)
