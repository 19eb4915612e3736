"""The adapter protocol: how TST reads any segmentation backbone.

An adapter wraps a backbone (``adapter.backbone``, so checkpoints name its weights
``adapter.backbone.*`` as in the release) and gives, for a batch of features, the frame features TST
consumes and the frame predictions whose argmax defines the segments; it also knows the backbone's
own training loss (stage 1). Third-party backbones join by registering a backbone whose factory
returns an object satisfying :class:`SegmentationAdapter` (see the package README).

Every adapter here handles a padded batch by running each video on its valid frames only (DiffAct's
instance norms and attention windows see the whole sequence) and padding the results with zeros.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from tal.seg_tst.modeling.diffact import DiffAct
from tal.seg_tst.modeling.frame_losses import class_weights_from_counts
from tal.seg_tst.modeling.mstcn import MSTCN, MSTCNPlusPlus, mstcn_loss


@dataclass
class AdapterOutput:
    """``features (B, feat_dim, T)``, ``predictions (B, K, T)`` (logits or probabilities: TST uses the
    argmax), ``probabilities`` says which, ``extras`` anything backbone-specific."""

    features: torch.Tensor
    predictions: torch.Tensor
    probabilities: bool
    extras: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SegmentationAdapter(Protocol):
    """What TST and the ``seg-backbone`` / ``backbone-tst`` models need from a backbone.

    * ``feat_dim``, ``num_classes``: channels of the features, number of classes;
    * ``backbone``: the wrapped ``nn.Module``;
    * ``__call__(x (B, C_in, T), mask (B, 1, T) bool) -> AdapterOutput``;
    * ``training_loss(x, mask, labels (B, T), boundary (B, T) | None, class_counts (K,) | None)``
      → dict of scalar losses with the total under ``"loss"`` (``-100`` labels are ignored).
    """

    feat_dim: int
    num_classes: int
    backbone: nn.Module

    def __call__(self, x: torch.Tensor, mask: torch.Tensor) -> AdapterOutput: ...

    def training_loss(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        labels: torch.Tensor,
        boundary: torch.Tensor | None = None,
        class_counts: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]: ...


def valid_lengths(mask: torch.Tensor) -> list[int]:
    """Valid frames of each video of a ``(B, 1, T)`` bool mask (valid frames come first)."""
    return [int(n) for n in mask.reshape(mask.shape[0], -1).sum(1).tolist()]


def per_video(
    x: torch.Tensor, mask: torch.Tensor, fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``fn((1, C, T_b)) -> (features (1, F, T_b), predictions (1, K, T_b))`` on each video's valid
    frames and zero-pad the results to ``T``."""
    feats, preds = [], []
    t_max = x.shape[-1]
    for b, n in enumerate(valid_lengths(mask)):
        f, p = fn(x[b : b + 1, :, :n])
        feats.append(torch.nn.functional.pad(f, (0, t_max - n)))
        preds.append(torch.nn.functional.pad(p, (0, t_max - n)))
    return torch.cat(feats), torch.cat(preds)


class DiffActAdapter(nn.Module):
    """DiffAct for TST: features = the encoder layers DiffAct conditions on (``feature_layer_indices``
    concatenated: 192 channels for GTEA/50Salads, 768 for Breakfast), predictions = DDIM samples.

    As in the release, eval mode samples with ``eval_seed`` (666) for every video; train mode (the
    frozen backbone while TST trains) encodes twice with dropout on and samples from the global RNG,
    so every epoch sees a different segmentation.
    """

    def __init__(self, backbone: DiffAct, eval_seed: int | None = 666) -> None:
        super().__init__()
        self.backbone = backbone
        self.eval_seed = eval_seed
        self.boundary_smooth = backbone.config.boundary_smooth
        self.feat_dim = backbone.feat_dim
        self.num_classes = backbone.num_classes

    def _one(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, feats = self.backbone.encode(x)
        if self.training:
            return feats, self.backbone.sample(x)
        return feats, self.backbone.sample_from_condition(feats, seed=self.eval_seed)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> AdapterOutput:
        feats, probs = per_video(x, mask, self._one)
        return AdapterOutput(feats, probs.to(feats.dtype), probabilities=True)

    def training_loss(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        labels: torch.Tensor,
        boundary: torch.Tensor | None = None,
        class_counts: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """DiffAct's loss of each video, averaged over the batch (the release accumulates ``loss / batch``)."""
        weights = None
        if class_counts is not None and self.backbone.config.class_weighting:
            w = class_weights_from_counts(class_counts.detach().cpu().numpy())
            weights = torch.as_tensor(w, dtype=x.dtype, device=x.device)
        rng = random.Random(int(torch.randint(0, 2**31 - 1, (1,))))
        sums: dict[str, torch.Tensor] = {}
        lengths = valid_lengths(mask)
        for b, n in enumerate(lengths):
            bnd = boundary[b, :n] if boundary is not None else x.new_zeros(n)
            out = self.backbone.training_losses(x[b : b + 1, :, :n], labels[b, :n], bnd, weights, rng)
            for k, v in {**out.terms, "loss": out.total}.items():
                sums[k] = sums.get(k, 0) + v / len(lengths)
        return sums


class MSTCNAdapter(nn.Module):
    """MS-TCN / MS-TCN++ for TST: features = the last stage's last layer ``(B, num_f_maps, T)``,
    predictions = the last stage's logits."""

    def __init__(self, backbone: MSTCN | MSTCNPlusPlus, mse_weight: float = 0.15) -> None:
        super().__init__()
        self.backbone = backbone
        self.mse_weight = mse_weight
        self.feat_dim = backbone.feat_dim
        self.num_classes = backbone.num_classes

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> AdapterOutput:
        stages, feats = self.backbone(x, mask)
        return AdapterOutput(feats, stages[-1], probabilities=False, extras={"stage_logits": stages})

    def training_loss(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        labels: torch.Tensor,
        boundary: torch.Tensor | None = None,
        class_counts: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        stages, _ = self.backbone(x, mask)
        return mstcn_loss(stages, labels, mask, self.mse_weight)


def adapter_probabilities(out: AdapterOutput) -> torch.Tensor:
    """The adapter's predictions as probabilities ``(B, K, T)``."""
    return out.predictions if out.probabilities else torch.softmax(out.predictions, 1)


def check_adapter(adapter: Any) -> SegmentationAdapter:
    """``adapter`` if it satisfies :class:`SegmentationAdapter`, else a ``TypeError`` naming what is missing."""
    missing = [a for a in ("feat_dim", "num_classes", "backbone", "training_loss") if not hasattr(adapter, a)]
    if missing or not callable(adapter):
        raise TypeError(
            f"{type(adapter).__name__} is not a segmentation adapter (missing: {', '.join(missing) or '__call__'}); "
            "wrap the backbone in an adapter such as DiffActAdapter or MSTCNAdapter"
        )
    return adapter
