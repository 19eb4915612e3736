"""Frame-level losses of DiffAct and MS-TCN, and DiffAct's boundary targets and class weights."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter1d


def soft_targets(onehot: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each class row of ``onehot (1, K, T)`` blurred along time by ``scipy``'s ``gaussian_filter1d``
    (reflect mode, truncate 4): the release's un-normalised soft labels."""
    arr = gaussian_filter1d(onehot.detach().double().cpu().numpy(), sigma, axis=-1)
    return torch.from_numpy(arr).to(onehot.device, onehot.dtype)


def frame_ce_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    soft: torch.Tensor | None = None,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean per-frame cross-entropy of ``logits (1, K, T)``.

    Hard targets ``labels (T,)`` (``-100`` ignored; ``class_weights (K,)`` give the weighted mean of
    ``nn.CrossEntropyLoss(reduction='none')`` averaged over frames, as DiffAct's ``.mean()`` does),
    or soft targets ``soft (1, K, T)``: ``mean_t(-sum_k soft_kt log_softmax_kt)``.
    """
    if soft is not None:
        return (-(soft * F.log_softmax(logits, 1))).sum(1).mean()
    per_frame = F.cross_entropy(logits[0].T, labels, weight=class_weights, ignore_index=-100, reduction="none")
    return per_frame.mean()


def smoothing_loss(logits: torch.Tensor, mask: torch.Tensor | None = None, clamp: float = 16.0) -> torch.Tensor:
    """MS-TCN's truncated smoothing loss: ``clamp((log p_t - log p_{t-1}.detach())^2, 0, 16)`` averaged over
    batch, classes and the ``T - 1`` frame pairs; with ``mask (B, 1, T)`` pairs whose later frame is padding
    count as zero (MS-TCN's ``* mask[:, :, 1:]`` inside the mean)."""
    logp = F.log_softmax(logits, dim=1)
    sq = torch.clamp((logp[:, :, 1:] - logp.detach()[:, :, :-1]) ** 2, min=0, max=clamp)
    if mask is not None:
        sq = sq * mask[:, :, 1:].to(sq.dtype)
    return sq.mean()


def boundary_loss(logits: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """DiffAct's decoder boundary loss: BCE between ``1 - <p_t, p_{t-1}.detach()>`` and ``boundary[..., 1:]``.

    ``logits (1, K, T)``, ``boundary (1, 1, T)`` in ``[0, 1]``.
    """
    p = torch.softmax(logits, 1)
    pred = 1 - (p[:, :, 1:] * p.detach()[:, :, :-1]).sum(1, keepdim=True)
    return F.binary_cross_entropy(pred.clamp(0, 1).float(), boundary[:, :, 1:].float())


def boundary_targets(labels: np.ndarray, smooth: float | None) -> np.ndarray:
    """DiffAct's ``get_boundary_seq``: ones at both frames of every label change, Gaussian-smoothed
    with ``sigma = smooth``, capped at the smoothed peak of one change and divided by the maximum.

    ``labels (T,)`` → ``(T,)`` float64. A video without a change has all zeros.
    """
    labels = np.asarray(labels)
    out = np.zeros(len(labels), np.float64)
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    if len(change) == 0:
        return out
    out[change] = 1
    out[change - 1] = 1
    if smooth is not None:
        out = gaussian_filter1d(out, smooth)
        probe = np.zeros(len(labels))
        probe[len(labels) // 2] = 1
        probe[len(labels) // 2 - 1] = 1
        cap = gaussian_filter1d(probe, smooth).max()
        out = np.minimum(out, cap)
        out = out / out.max()
    return out


def class_weights_from_counts(counts: np.ndarray) -> np.ndarray:
    """DiffAct's ``get_class_weights``: ``sum(counts) / ((counts + 10) * K)``."""
    counts = np.asarray(counts, np.float64)
    return counts.sum() / ((counts + 10) * len(counts))
