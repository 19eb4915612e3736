"""LST's contrastive loss written as loops over the batch (the release's KLLoss, stated plainly)."""

from __future__ import annotations

import math


def kl_loss_rows(logits: list[list[float]], labels: list[int]) -> float:
    """``KLDivLoss(mean)(log_softmax(logits), softmax(10 * G)) * B`` with ``G[i][j] = labels equal``."""
    b = len(labels)
    total = 0.0
    for i in range(b):
        row = logits[i]
        mx = max(row)
        log_z = mx + math.log(sum(math.exp(v - mx) for v in row))
        g = [10.0 if labels[i] == labels[j] else 0.0 for j in range(b)]
        gm = max(g)
        z = sum(math.exp(v - gm) for v in g)
        for j in range(b):
            p = math.exp(g[j] - gm) / z
            total += p * (math.log(p) - (row[j] - log_z))
    return total / (b * b) * b


def cosine_logits(f: list[list[float]], t: list[list[float]], scale: float) -> list[list[float]]:
    def unit(v: list[float]) -> list[float]:
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v]

    fu = [unit(v) for v in f]
    tu = [unit(v) for v in t]
    return [[scale * sum(a * b for a, b in zip(fi, tj, strict=True)) for tj in tu] for fi in fu]
