"""Local attention as the release describes its sliding-chunk attention, one query at a time."""

from __future__ import annotations

import math

import torch


def local_attention_loop(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor,
    w: int,
    rel_bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(B, H, T, D)`` outputs in float64 of local attention with ``w`` steps on either side.

    Query ``i`` scores keys ``i - w .. i + w``; positions outside ``[0, T)`` are dropped, padded keys
    (``key_mask`` false) get ``-1e4`` added, ``rel_bias[:, j - i + w]`` is added when given; rows of
    padded queries are 0.
    """
    b, h, t, d = q.shape
    out = torch.zeros(b, h, t, d, dtype=torch.float64)
    for bi in range(b):
        for hi in range(h):
            for i in range(t):
                if not key_mask[bi, i]:
                    continue
                js = [j for j in range(i - w, i + w + 1) if 0 <= j < t]
                scores = []
                for j in js:
                    s = float(q[bi, hi, i].double() @ k[bi, hi, j].double()) / math.sqrt(d)
                    s += 0.0 if key_mask[bi, j] else -1e4
                    if rel_bias is not None:
                        s += float(rel_bias[hi, j - i + w])
                    scores.append(s)
                p = torch.softmax(torch.tensor(scores, dtype=torch.float64), dim=0)
                out[bi, hi, i] = sum(pj * v[bi, hi, j].double() for pj, j in zip(p, js, strict=True))
    return out
