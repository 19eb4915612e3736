"""One-to-one matching of predicted segments to ground-truth segments (TST's ``HungarianMatcher``).

The score of a (predicted, true) pair is their overlap in frames divided by a span that depends on how
they lie (the release's rule, with inclusive last frames ``e = end - 1``):

* the prediction contains the truth (``ps <= gs`` and ``ge <= pe``): ``pe - ps``;
* the truth strictly contains the prediction (``gs < ps`` and ``pe < ge``): ``ge - gs``;
* otherwise, the truth starts first (``gs < ps``): ``pe - gs``; else ``ge - ps``;

each span at least 1; pairs that do not overlap score 0. Classes play no part. The Hungarian
assignment (``scipy.optimize.linear_sum_assignment``) minimises the negated scores, stored as float32
as the release does; assigned pairs with a zero score are dropped.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from tal.seg_tst.modeling.segments import Segmentation


def overlap_scores(pred: Segmentation, gt: Segmentation) -> torch.Tensor:
    """``(S, G)`` float64 matching scores of every predicted segment against every true segment."""
    ps, pe = pred.starts[:, None], pred.ends[:, None] - 1
    gs, ge = gt.starts[None, :], gt.ends[None, :] - 1
    overlap = (torch.minimum(pe, ge) - torch.maximum(ps, gs) + 1).clamp(min=0)
    pred_contains = (ps <= gs) & (ge <= pe)
    gt_contains = ~pred_contains & (gs < ps) & (pe < ge)
    gt_first = ~pred_contains & ~gt_contains & (gs < ps)
    span = torch.where(
        pred_contains, pe - ps, torch.where(gt_contains, ge - gs, torch.where(gt_first, pe - gs, ge - ps))
    )
    return overlap.double() / span.clamp(min=1).double()


def match_segments(pred: Segmentation, gt: Segmentation) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(pred_idx (M,), gt_idx (M,))`` int64 of the matched pairs, in row order."""
    cost = (-overlap_scores(pred, gt)).float().cpu().numpy()
    rows, cols = linear_sum_assignment(cost)
    keep = cost[rows, cols] != 0
    return (
        torch.as_tensor(np.asarray(rows[keep]), dtype=torch.int64),
        torch.as_tensor(np.asarray(cols[keep]), dtype=torch.int64),
    )
