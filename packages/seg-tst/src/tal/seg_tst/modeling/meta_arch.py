"""The registered models: a backbone alone (stage 1) and ``BackboneWithTST`` (stage 2).

Batch convention (``tal.seg_tst.data`` and core's ``mstcn`` dataset both produce it): ``features
(B, C, T)`` zero-padded, ``mask (B, 1, T)`` bool, ``labels (B, T)`` int64 (``-100`` = padding),
``targets`` (the ``(T_i,)`` labels the metric compares with), optionally ``sample_rate`` (features and
labels are then at the full frame rate and the model samples every ``sample_rate``-th frame, as the
releases do for 50Salads) and ``class_counts (K,)`` of the training set (DiffAct's class weights).

In eval mode both models return one prediction per video at the full frame rate: the stage-1 model a
``(T_i,)`` label tensor, ``BackboneWithTST`` a dict ``{"refined": (T_i,), "backbone": (T_i,)}`` (the
backbone's own labels under the same post-processing, for the comparison table).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, cast

import torch
from torch import nn

from tal.core.errors import ConfigError
from tal.seg_tst.modeling.adapters import AdapterOutput, SegmentationAdapter, adapter_probabilities, check_adapter
from tal.seg_tst.modeling.frame_losses import boundary_targets
from tal.seg_tst.modeling.losses import tst_loss
from tal.seg_tst.modeling.matcher import match_segments
from tal.seg_tst.modeling.segments import segments_of
from tal.seg_tst.modeling.tst import TSTOutput, TSTRefiner
from tal.seg_tst.postprocess import (
    median_filter_labels,
    median_filter_probs,
    purge_short_segments,
    restore_full_sequence,
    upsample_repeat,
)

logger = logging.getLogger(__name__)

PostprocessType = Literal["none", "purge", "median"]


def _sample_rate(batch: Mapping[str, Any]) -> int:
    sr = batch.get("sample_rate", 1)
    return int(sr.reshape(-1)[0]) if isinstance(sr, torch.Tensor) else int(sr)


def subsample(
    batch: Mapping[str, Any], offsets: list[int], sample_rate: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Every ``sample_rate``-th frame of each video from its offset → ``features, mask, labels`` re-padded
    and the full lengths of the videos."""
    x, mask, labels = batch["features"], batch["mask"], batch["labels"]
    full = [int(n) for n in mask.reshape(mask.shape[0], -1).sum(1).tolist()]
    if sample_rate == 1 and not any(offsets):
        return x, mask, labels, full
    parts = [(x[b, :, o : full[b] : sample_rate], labels[b, o : full[b] : sample_rate]) for b, o in enumerate(offsets)]
    t_max = max(p[0].shape[-1] for p in parts)
    xs = x.new_zeros(x.shape[0], x.shape[1], t_max)
    ms = torch.zeros(x.shape[0], 1, t_max, dtype=torch.bool, device=x.device)
    ls = labels.new_full((x.shape[0], t_max), -100)
    for b, (f, lab) in enumerate(parts):
        xs[b, :, : f.shape[-1]] = f
        ms[b, :, : f.shape[-1]] = True
        ls[b, : lab.shape[0]] = lab
    return xs, ms, ls, full


class SegBackboneModel(nn.Module):
    """Stage 1: a segmentation backbone (through its adapter) trained with its own losses.

    Args:
        adapter: a :class:`~tal.seg_tst.modeling.adapters.SegmentationAdapter`.
        postprocess: ``("none" | "purge" | "median", value)``, DiffAct's rules: median of the class
            probabilities before the argmax, purge after up-sampling.
        train_offset: ``"random"`` picks a random sampling offset per video (DiffAct's temporal
            augmentation), ``"first"`` always 0.
        eval_offsets: ``"all"`` averages the predictions of the ``sample_rate`` offsets and restores the
            full rate with DiffAct's ``restore_full_sequence``; ``"first"`` uses offset 0 and repeats.
    """

    def __init__(
        self,
        adapter: nn.Module,
        postprocess: tuple[PostprocessType, int] = ("none", 0),
        train_offset: Literal["random", "first"] = "random",
        eval_offsets: Literal["all", "first"] = "all",
    ) -> None:
        super().__init__()
        check_adapter(adapter)
        self.adapter = adapter
        self.postprocess = postprocess
        self.train_offset = train_offset
        self.eval_offsets = eval_offsets

    @property
    def protocol(self) -> SegmentationAdapter:
        """The adapter, typed as the protocol it satisfies."""
        return cast(SegmentationAdapter, self.adapter)

    def forward(self, batch: Mapping[str, Any]) -> Any:
        sr = _sample_rate(batch)
        if self.training:
            return self.training_losses(batch, sr)
        return self.predict(batch, sr)

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """One group, weight decay on every parameter (the releases' ``Adam(weight_decay=...)``)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": weight_decay}]

    def training_losses(self, batch: Mapping[str, Any], sr: int) -> dict[str, torch.Tensor]:
        b = batch["features"].shape[0]
        offsets = [int(torch.randint(0, sr, (1,))) if self.train_offset == "random" else 0 for _ in range(b)]
        x, mask, labels, full = subsample(batch, offsets, sr)
        boundary = self._boundaries(batch["labels"], full, offsets, sr, x.shape[-1])
        return self.protocol.training_loss(x, mask, labels, boundary, batch.get("class_counts"))

    def _boundaries(
        self, labels: torch.Tensor, full: list[int], offsets: list[int], sr: int, t_len: int
    ) -> torch.Tensor | None:
        smooth = getattr(self.adapter, "boundary_smooth", None)
        if smooth is None:
            return None
        out = torch.zeros(labels.shape[0], t_len, dtype=torch.float32, device=labels.device)
        for b, (n, o) in enumerate(zip(full, offsets, strict=True)):
            bnd = torch.from_numpy(boundary_targets(labels[b, :n].cpu().numpy(), smooth))[o::sr]
            peak = float(bnd.max()) if bnd.numel() else 0.0
            out[b, : bnd.numel()] = (bnd / peak if peak > 0 else bnd).float()
        return out

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Any], sr: int) -> list[torch.Tensor]:
        x, mask = batch["features"], batch["mask"]
        full = [int(n) for n in mask.reshape(mask.shape[0], -1).sum(1).tolist()]
        kind, value = self.postprocess
        out = []
        for b, n in enumerate(full):
            offsets = list(range(sr)) if self.eval_offsets == "all" else [0]
            probs = []
            for o in offsets:
                xo = x[b : b + 1, :, o:n:sr]
                res = self.adapter(xo, torch.ones(1, 1, xo.shape[-1], dtype=torch.bool, device=x.device))
                probs.append(adapter_probabilities(res)[0])
            t_min = min(p.shape[-1] for p in probs)
            mean = torch.stack([p[:, :t_min] for p in probs]).mean(0)
            if kind == "median":
                mean = median_filter_probs(mean, value)
            labels = mean.argmax(0)
            if self.eval_offsets == "all":
                labels = restore_full_sequence(labels, n, sr // 2, (sr - 1) // 2, sr)
            else:
                labels = upsample_repeat(labels, sr, n)
            if kind == "purge":
                labels = purge_short_segments(labels, value, convention="diffact")
            out.append(labels)
        return out


class BackboneWithTST(nn.Module):
    """A backbone adapter with the TST refiner on top (the release's ``BackboneWithTST``).

    ``state_dict()`` holds ``adapter.backbone.*`` and ``refiner.*`` exactly as the release's
    ``split_K_best.pth`` (``torch.save(model.state_dict())``), so ``model.load_state_dict(ckpt,
    strict=False)`` uses every key of such a file (and ``strict=True`` works too).

    ``forward`` takes either a tensor ``(1, C_in, T)`` (the release's call: returns the refiner's output
    dict plus ``backbone_outputs`` and ``frame_predictions``) or a tal batch (training losses or
    predictions, see the module docstring).

    Args:
        adapter: the backbone's :class:`~tal.seg_tst.modeling.adapters.SegmentationAdapter`.
        refiner: a :class:`~tal.seg_tst.modeling.tst.TSTRefiner`.
        freeze_backbone: stage 2 (the release's default for DiffAct): the backbone gets no gradient.
        backbone_train_mode: while training, run the frozen backbone in train mode as the release does.
        infer_mode: ``hardmax`` (default), ``soft`` mask voting or ``hybrid``.
        postprocess: ``("none" | "purge" | "median", value)`` on the frame labels (TST's rules).
        lr_transformer: learning rate of the attention blocks in :meth:`param_groups`.
        bg_weight: CE weight of TST's no-action class.
    """

    def __init__(
        self,
        adapter: nn.Module,
        refiner: TSTRefiner,
        freeze_backbone: bool = True,
        *,
        backbone_train_mode: bool = True,
        infer_mode: Literal["hardmax", "soft", "hybrid"] = "hardmax",
        hybrid_margin: int = 5,
        postprocess: tuple[PostprocessType, int] = ("none", 0),
        lr_transformer: float | None = None,
        bg_weight: float = 0.1,
    ) -> None:
        super().__init__()
        check_adapter(adapter)
        self.adapter = adapter
        self.refiner = refiner
        feat_dim, num_classes = getattr(adapter, "feat_dim"), getattr(adapter, "num_classes")  # noqa: B009
        if feat_dim != refiner.feat_dim:
            raise ConfigError(
                f"refiner.feat_dim: the refiner expects {refiner.feat_dim} feature channels but the backbone "
                f"gives {feat_dim}"
            )
        if num_classes != refiner.n_classes:
            raise ConfigError(
                f"refiner.n_classes: the refiner has {refiner.n_classes} classes, the backbone {num_classes}"
            )
        self.backbone_train_mode = backbone_train_mode
        self.infer_mode = infer_mode
        self.hybrid_margin = hybrid_margin
        self.postprocess = postprocess
        self.lr_transformer = lr_transformer
        self.bg_weight = bg_weight
        self.backbone_ready = False
        self._backbone_frozen = False
        if freeze_backbone:
            self.freeze_backbone()
        self.register_load_state_dict_post_hook(_mark_backbone_loaded)

    @property
    def protocol(self) -> SegmentationAdapter:
        """The adapter, typed as the protocol it satisfies."""
        return cast(SegmentationAdapter, self.adapter)

    # -- the release's API --------------------------------------------------------------------
    def freeze_backbone(self) -> None:
        for p in self.adapter.parameters():
            p.requires_grad = False
        self._backbone_frozen = True

    def unfreeze_backbone(self) -> None:
        for p in self.adapter.parameters():
            p.requires_grad = True
        self._backbone_frozen = False

    def train(self, mode: bool = True) -> BackboneWithTST:
        super().train(mode)
        if mode and self._backbone_frozen and not self.backbone_train_mode:
            self.adapter.eval()
        return self

    def run_backbone(self, x: torch.Tensor, mask: torch.Tensor) -> AdapterOutput:
        """The adapter's output (without autograd while the backbone is frozen)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self._backbone_frozen):
            return self.adapter(x, mask)

    def refine(self, x: torch.Tensor) -> tuple[TSTOutput, AdapterOutput]:
        """Backbone + refiner on one video ``(1, C_in, T)``."""
        bk = self.run_backbone(x, torch.ones(1, 1, x.shape[-1], dtype=torch.bool, device=x.device))
        return self.refiner(bk.features, bk.predictions), bk

    def forward(self, inputs: torch.Tensor | Mapping[str, Any]) -> Any:
        if isinstance(inputs, torch.Tensor):
            out, bk = self.refine(inputs)
            return {
                "segment_cls": out.segment_cls,
                "segment_mask": out.segment_mask,
                "action_idx": out.action_idx,
                "backbone_outputs": bk.extras,
                "frame_predictions": bk.predictions,
            }
        sr = _sample_rate(inputs)
        if self.training:
            return self.training_losses(inputs, sr)
        return self.predict(inputs, sr)

    # -- tal training -------------------------------------------------------------------------
    def training_losses(self, batch: Mapping[str, Any], sr: int) -> dict[str, torch.Tensor]:
        if self._backbone_frozen and not self.backbone_ready:
            raise ConfigError(
                "model.backbone_checkpoint: the frozen backbone has no trained weights; train it first (stage 1, "
                "e.g. `tal train seg-tst/gtea-backbone --split 1`) and point model.backbone_checkpoint at its "
                "best.pt, or at a DiffAct release.model"
            )
        x, mask, labels, _ = subsample(batch, [0] * batch["features"].shape[0], sr)
        sums: dict[str, torch.Tensor] = {}
        lengths = [int(n) for n in mask.reshape(mask.shape[0], -1).sum(1).tolist()]
        for b, n in enumerate(lengths):
            out, _ = self.refine(x[b : b + 1, :, :n])
            gt = segments_of(labels[b, :n])
            losses = tst_loss(out, gt, match_segments(out.segments, gt), self.refiner.n_classes, self.bg_weight)
            if not self._backbone_frozen:
                bk_losses = self.protocol.training_loss(
                    x[b : b + 1, :, :n], mask[b : b + 1, :, :n], labels[b : b + 1, :n], None, batch.get("class_counts")
                )
                losses["backbone_loss"] = bk_losses["loss"]
                losses["loss"] = losses["loss"] + bk_losses["loss"]
            for k, v in losses.items():
                sums[k] = sums.get(k, 0) + v / len(lengths)
        return sums

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The release's optimizer groups: TST's attention blocks at ``lr_transformer`` (when set), the rest of
        the trainable parameters at the optimizer's lr; weight decay on all of them (Adam's L2, as the release)."""
        trainable = [p for p in self.parameters() if p.requires_grad]
        attn_ids = {id(p) for p in self.refiner.transformer_parameters()}
        attn = [p for p in trainable if id(p) in attn_ids]
        rest = [p for p in trainable if id(p) not in attn_ids]
        groups: list[dict[str, Any]] = [{"params": rest, "weight_decay": weight_decay}]
        attn_group: dict[str, Any] = {"params": attn, "weight_decay": weight_decay}
        if self.lr_transformer is not None:
            attn_group["lr"] = self.lr_transformer
        groups.append(attn_group)
        return [g for g in groups if g["params"]]

    # -- tal evaluation -----------------------------------------------------------------------
    def refined_labels(self, out: TSTOutput) -> torch.Tensor:
        if self.infer_mode == "soft":
            return out.soft_labels()
        if self.infer_mode == "hybrid":
            return out.hybrid_labels(self.hybrid_margin)
        return out.hardmax_labels()

    def finish_labels(self, labels: torch.Tensor, sr: int, full_len: int) -> torch.Tensor:
        """TST's post-processing at the model's rate, then repetition to the full frame rate."""
        kind, value = self.postprocess
        if kind == "purge":
            labels = purge_short_segments(labels, value, convention="tst")
        elif kind == "median":
            labels = median_filter_labels(labels, value)
        return upsample_repeat(labels, sr, full_len)

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Any], sr: int) -> list[dict[str, torch.Tensor]]:
        x, mask = batch["features"], batch["mask"]
        full = [int(n) for n in mask.reshape(mask.shape[0], -1).sum(1).tolist()]
        out = []
        for b, n in enumerate(full):
            res, _ = self.refine(x[b : b + 1, :, 0:n:sr])
            out.append(
                {
                    "refined": self.finish_labels(self.refined_labels(res), sr, n),
                    "backbone": self.finish_labels(res.action_idx, sr, n),
                }
            )
        return out


def _mark_backbone_loaded(module: nn.Module, incompatible: Any) -> None:
    """After ``load_state_dict``: the backbone counts as trained if the loaded dict had its weights."""
    missing = set(incompatible.missing_keys)
    if isinstance(module, BackboneWithTST) and not any(k.startswith("adapter.") for k in missing):
        module.backbone_ready = True
