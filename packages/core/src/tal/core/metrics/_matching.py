"""Internals of :mod:`tal.core.metrics.localization`: tIoU blocks and the vectorized greedy matching.

Semantics (the ActivityNet / ActionFormer evaluator's) are documented there; this module only
reorganises the per-prediction loop so that numpy does the work.
"""

from __future__ import annotations

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
    pscore: np.ndarray,
    tie_order: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching and Recall@kx coverage of all classes, videos and thresholds at once.

    A prediction only competes for ground truth of its own (class, video) group. tIoUs are computed
    per bucket of groups with similar ground-truth counts (padded ``(n, G)`` blocks stay small) and
    reduced to each prediction's candidates (tIoU >= the lowest threshold) in preference order;
    :func:`_resolve` then matches everything at once.

    ``tie_order="numpy"`` orders tied tIoUs (and, for Recall@kx, the predictions of a group) with
    NumPy's default argsort of the very arrays the evaluator sorts; ``"stable"`` with a stable sort.

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

    recall_rank = rank if tie_order == "stable" else _group_score_ranks(order[by_group], gfirst, gsize, n_g, pscore)

    log_g = np.where(n_g > 0, np.ceil(np.log2(np.maximum(n_g, 1))), -1).astype(np.int64)
    entry_bucket = log_g[group_of]
    by_bucket = np.argsort(small_int(entry_bucket + 1, 66), kind="stable")  # groups stay contiguous
    cuts = np.searchsorted(entry_bucket[by_bucket], np.arange(-1, int(log_g.max()) + 2))
    t_min = thr.min()
    singles: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, instance, key)
    multis: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, counts, instances, keys)
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
            key = np.where(colvalid[loc], iou, -np.inf)
            np.nan_to_num(key, copy=False, nan=np.inf)  # a NaN tIoU never stops the evaluator's scan
            n_cand = np.count_nonzero(key >= t_min, axis=1)  # rows without are false positives everywhere
            one = np.flatnonzero(n_cand == 1)  # the usual case: the only candidate is the maximum
            j = key[one].argmax(axis=1)
            singles.append((rows[c0 + one], gid[loc[one], j], key[one, j]))
            many = np.flatnonzero(n_cand > 1)
            if len(many):  # candidates in the evaluator's scan order (ragged rows)
                by_key = _scan_order(iou[many], key[many], n_g[groups][loc[many]], tie_order)
                take = np.arange(width)[None, :] < n_cand[many][:, None]
                inst = gid[loc[many][:, None], by_key][take]
                multis.append((rows[c0 + many], n_cand[many], inst, np.take_along_axis(key[many], by_key, 1)[take]))
    if not singles:
        return tp, covered  # no prediction shares a (class, video) with ground truth

    def cat(parts: list, i: int, dtype: type) -> np.ndarray:
        return np.concatenate([part[i] for part in parts]) if parts else np.zeros(0, dtype)

    rows1, rows2 = cat(singles, 0, np.int64), cat(multis, 0, np.int64)
    inst_group = np.empty(len(gv), np.int64)
    inst_group[gt_order] = np.repeat(np.arange(len(gt_first)), gt_size)
    won1, won2, first_hit = _resolve(
        (rows1, cat(singles, 1, np.int64), cat(singles, 2, np.float64)),
        (rows2, cat(multis, 1, np.int64), cat(multis, 2, np.int64), cat(multis, 3, np.float64)),
        recall_rank,
        thr,
        inst_group,
    )
    tp[by_group[rows1]] = won1
    tp[by_group[rows2]] = won2
    # Recall@kx: instance i of a group with n instances is covered at k when first_hit < k * n.
    n_in_group = np.empty(len(gv), np.int64)
    n_in_group[gt_order] = np.repeat(gt_size, gt_size)
    hit = first_hit[gt_order, :, None] < ks[None, None, :] * n_in_group[gt_order, None, None]  # (M, T, K)
    cls_first = np.searchsorted(gcls[gt_order], np.arange(n_cls))  # gt_order is class-major; no class is empty
    covered[:] = np.add.reduceat(hit.astype(np.int64), cls_first, axis=0)
    return tp, covered


def _scan_order(iou: np.ndarray, key: np.ndarray, n_inst: np.ndarray, tie_order: str) -> np.ndarray:
    """Column order in which the evaluator scans each row's instances: ``argsort()[::-1]`` of the
    row's ``n_inst`` tIoUs (NaN first). ``"numpy"``: NumPy's default argsort of exactly those
    arrays (rows of equal length sorted together: the same kernel per row); ``"stable"``: stable.
    Padding columns come last. Returns ``(m, W)`` column indices."""
    m, width = key.shape
    if tie_order == "stable":
        return np.argsort(key, axis=1, kind="stable")[:, ::-1]
    out = np.empty((m, width), np.int64)
    for g in np.unique(n_inst):
        sel = np.flatnonzero(n_inst == g)
        out[sel, :g] = np.argsort(iou[sel, :g], axis=1)[:, ::-1]
        out[sel, g:] = np.arange(g, width)
    return out


def _group_score_ranks(
    p: np.ndarray, gfirst: np.ndarray, gsize: np.ndarray, n_g: np.ndarray, pscore: np.ndarray
) -> np.ndarray:
    """Position of each prediction in ``argsort()[::-1]`` (NumPy's default sort) of its group's scores
    in input order, as the evaluator's Recall@kx does per video; ``p`` are the predictions in group
    order. Groups without ground truth are left at 0 (they cover nothing)."""
    out = np.zeros(len(p), np.int64)
    for size in np.unique(gsize[n_g > 0]):
        sel = np.flatnonzero((gsize == size) & (n_g > 0))
        entries = gfirst[sel][:, None] + np.arange(size)  # (g, size) positions in group order
        by_input = np.argsort(p[entries], axis=1)  # prediction indices are unique
        entries = np.take_along_axis(entries, by_input, axis=1)  # now in input order
        ranked = np.argsort(pscore[p[entries]], axis=1)[:, ::-1]
        pos = np.empty_like(ranked)
        np.put_along_axis(pos, ranked, np.arange(size)[None, :], axis=1)
        out[entries] = pos
    return out


def _first_per_instance(inst: np.ndarray, row: np.ndarray, count: np.ndarray, n_t: int) -> np.ndarray:
    """Rows (``row`` gives evaluation order inside a group) with one instance ``inst`` each, passing
    the ascending thresholds ``[0, count)``: ``(m, T)`` bool, the row is the first of its instance to
    pass threshold ``t``."""
    if len(inst) == 0:
        return np.zeros((0, n_t), bool)
    o = np.argsort(inst * (int(row.max()) + 1) + row)  # unique keys: by instance, then row
    io, co = inst[o], count[o]
    head = np.concatenate([[True], io[1:] != io[:-1]])
    base = (np.cumsum(head) - 1) * (n_t + 1)  # separates instances: an exact segmented running max
    before = np.concatenate([[0], np.maximum.accumulate(base + co)[:-1]]) - base
    before[head] = 0
    t_idx = np.arange(n_t)[None, :]
    mask = np.empty((len(inst), n_t), bool)
    mask[o] = (t_idx >= before[:, None]) & (t_idx < co[:, None])
    return mask


def _resolve(
    single: tuple[np.ndarray, np.ndarray, np.ndarray],
    multi: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    rank: np.ndarray,
    thr: np.ndarray,
    inst_group: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy lock matching and best covering rank, for all groups and thresholds at once.

    Predictions are identified by a row number that follows evaluation order inside each (class,
    video) group. Each takes the free candidate of highest preference whose key passes the threshold.
    At a threshold where an instance is only wanted by predictions with a single passing candidate,
    the first of them wins it (a candidate passes a prefix of the ascending thresholds). The rest
    ("tangled": some prediction has several passing candidates) goes to :func:`_untangle`.

    Args:
        single: ``(rows (m1,), instance (m1,), key (m1,))`` of predictions with one candidate; keys
            are tIoU with NaN as +inf.
        multi: ``(rows (m2,), counts (m2,) >= 2, instances (E,), keys (E,))``: ragged candidate lists in
            preference order (descending key).
        rank: Recall@kx rank in the group (evaluator's per-video score order), indexed by row;
            thr: ``(T,)`` ascending; inst_group: ``(n_inst,)``.

    Returns:
        won1 ``(m1, T)``, won2 ``(m2, T)`` true positives; first_hit ``(n_inst, T)``: best rank of a
        prediction with a real tIoU >= thr (int64 max when none).
    """
    rows1, c1, k1 = single
    rows2, cnt2, inst2, key2 = multi
    m1, m2, n_t, n_inst = len(rows1), len(rows2), len(thr), len(inst_group)
    t_idx = np.arange(n_t)
    first_hit = np.full(n_inst * n_t, np.iinfo(np.int64).max)

    # Each prediction's best candidate: the first prediction passing a threshold wins it.
    start2 = np.cumsum(cnt2) - cnt2
    rows = np.concatenate([rows1, rows2])
    c0 = np.concatenate([c1, inst2[start2]])
    k0 = np.concatenate([k1, key2[start2]])
    n_pass0 = np.searchsorted(thr, k0, side="right")
    first0 = _first_per_instance(c0, rows, n_pass0, n_t)
    lock0 = c0[:, None] * n_t + t_idx[None, :]  # (m, T) flat (instance, threshold)
    cover0 = t_idx[None, :] < np.where(np.isfinite(k0), n_pass0, 0)[:, None]  # a NaN tIoU covers nothing
    np.minimum.at(first_hit, lock0[cover0], np.broadcast_to(rank[rows][:, None], cover0.shape)[cover0])

    # Other candidates of multi-candidate predictions, per passing threshold: (entry, threshold).
    e_row = np.repeat(np.arange(m2), cnt2)
    e_pass = np.searchsorted(thr, key2, side="right")
    et_e, et_t = _expand(e_pass)
    et_lock = inst2[et_e] * n_t + et_t
    other = (et_e != start2[e_row[et_e]]) & np.isfinite(key2[et_e])
    np.minimum.at(first_hit, et_lock[other], rank[rows2[e_row[et_e[other]]]])
    # Where a prediction has several passing candidates, those (instance, threshold) are tangled.
    tangled = np.zeros(n_inst * n_t, bool)
    tangled[et_lock[et_t < e_pass[start2 + 1][e_row[et_e]]]] = True
    pending = (t_idx[None, :] < n_pass0[:, None]) & tangled[lock0]
    won = (first0 & ~pending).reshape(-1)

    # Tangled (prediction, threshold) pairs, in row-major order, with their passing candidates.
    a, t = np.nonzero(pending)
    order = np.argsort(rows[a] * n_t + t)
    a, t = a[order], t[order]
    n_pass2 = np.zeros((m2, n_t), np.int64)  # passing candidates per (row, threshold)
    np.add.at(n_pass2, (e_row[et_e], et_t), 1)
    is2 = a >= m1
    counts = np.ones(len(a), np.int64)
    counts[is2] = n_pass2[a[is2] - m1, t[is2]]
    e_pair, e_slot = _expand(counts)
    e_lock = lock0[a[e_pair], t[e_pair]]  # slot 0, then the other passing candidates
    more = e_slot > 0
    e_lock[more] = inst2[start2[a[e_pair[more]] - m1] + e_slot[more]] * n_t + t[e_pair[more]]
    run = inst_group[lock0[a, t] // n_t] * n_t + t  # (group, threshold) of each pair
    pair_won = _untangle(e_pair, e_lock, run, n_inst * n_t)
    won[(a * n_t + t)[pair_won]] = True
    return won[: m1 * n_t].reshape(m1, n_t), won[m1 * n_t :].reshape(m2, n_t), first_hit.reshape(n_inst, n_t)


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, index)`` of ``counts[i]`` items per owner ``i``: ``owner = repeat(arange, counts)``."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)


_ROUND_COST = 500  # one round costs about as much as this many candidate entries in a wave


def _untangle(e_pair: np.ndarray, e_lock: np.ndarray, run: np.ndarray, n_locks: int) -> np.ndarray:
    """Greedy matching of tangled pairs, given as candidate entries (``e_pair``, ``e_lock``) sorted by
    pair (pairs in evaluation order within a ``run``, runs sharing no lock) then by preference.

    Waves: each pair's first free candidate is final when no earlier unresolved pair could still take
    that lock (choices only shrink as locks are taken), so the first unresolved pair of a run always
    resolves. When conflict chains are long (a wave resolves little), the remaining pairs go one per
    run per round instead (:func:`_rounds`). Returns ``(n_pairs,)`` bool: the pair won a lock.
    """
    n_pairs = len(run)
    won = np.zeros(n_pairs, bool)
    locked = np.zeros(n_locks, bool)
    holder = np.empty(n_locks, np.int64)
    if n_pairs and int(np.unique(run, return_counts=True)[1].max()) * _ROUND_COST < len(e_pair):
        _rounds(e_pair, e_lock, run, won, locked)
        return won
    while len(e_pair):
        free = ~locked[e_lock]  # a taken lock never frees up again: drop it
        e_pair, e_lock = e_pair[free], e_lock[free]
        if len(e_pair) == 0:
            break
        head = _runs(e_pair)  # the first free candidate of each pair still holding one
        pairs, choice = e_pair[head], e_lock[head]
        holder[e_lock] = n_pairs
        np.minimum.at(holder, e_lock, e_pair)
        final = holder[choice] == pairs
        won[pairs[final]] = True
        locked[choice[final]] = True
        done = np.zeros(n_pairs, bool)
        done[pairs[final]] = True
        keep = ~done[e_pair]
        e_pair, e_lock = e_pair[keep], e_lock[keep]
        if 2 * int(final.sum()) < len(pairs) and len(e_pair):
            left = np.unique(e_pair)
            longest = int(np.unique(run[left], return_counts=True)[1].max())
            if longest * _ROUND_COST < len(e_pair):
                _rounds(e_pair, e_lock, run, won, locked)
                break
    return won


def _rounds(e_pair: np.ndarray, e_lock: np.ndarray, run: np.ndarray, won: np.ndarray, locked: np.ndarray) -> None:
    """Sequential matching of the remaining pairs: round ``r`` takes the ``r``-th pair of every run
    (runs share no lock, so a round has no conflicts). Updates ``won`` and ``locked`` in place."""
    head = _runs(e_pair)
    pairs = e_pair[head]
    first = head
    last = np.append(head[1:], len(e_pair))
    by_run = np.argsort(run[pairs], kind="stable")  # pairs keep evaluation order inside a run
    run_start = _runs(run[pairs][by_run])
    pos = np.empty(len(pairs), np.int64)
    pos[by_run] = np.arange(len(pairs)) - np.repeat(run_start, np.diff(np.append(run_start, len(pairs))))
    by_pos = np.argsort(pos, kind="stable")
    cuts = np.searchsorted(pos[by_pos], np.arange(int(pos.max()) + 2))
    for r in range(int(pos.max()) + 1):
        sel = by_pos[cuts[r] : cuts[r + 1]]
        owner, idx = _expand(last[sel] - first[sel])
        lk = e_lock[first[sel][owner] + idx]
        free = np.flatnonzero(~locked[lk])
        if len(free) == 0:
            continue
        h = free[_runs(owner[free])]  # first free candidate of each pair that has one
        locked[lk[h]] = True
        won[pairs[sel[owner[h]]]] = True
