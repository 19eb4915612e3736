"""The ActionFormer model (the release's ``LocPointTransformer``): backbone → neck → heads → losses / detections.

Training: label assignment (centre sampling, regression ranges, shortest segment wins) and the
focal + DIoU losses normalised by an EMA of the positive count. Inference: the network's outputs
go to :mod:`tal.loc_actionformer.postprocess` (decoding, NMS, seconds, score fusion; long videos
window by window).

Batch contract of :meth:`ActionFormer.forward` (a mapping, one entry per video where a list):

- ``features``: list of ``(C, T_i)`` tensors, or a ``(B, C, T)`` tensor (with optional ``lengths (B,)``);
- training: ``segments`` (list of ``(N_i, 2)`` float, **feature-grid units**) and ``labels`` (list of
  ``(N_i,)`` int64), or ``targets`` (list of :class:`tal.core.types.Segments` in grid units);
- eval: ``fps``, ``feat_stride``, ``num_frames``, ``duration`` (one number per video) to convert
  detections to seconds; ``video_ids`` is passed through untouched by the model.

:func:`tal.loc_actionformer.data.batch_from_records` builds such a batch from video records.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tal.core.engine.distributed import sum_across_processes
from tal.core.errors import ConfigError
from tal.core.formats import read_annotations
from tal.core.types import Segments
from tal.loc_actionformer.config import ActionFormerConfig, AttnImpl
from tal.loc_actionformer.modeling.backbone import ConvTransformerBackbone
from tal.loc_actionformer.modeling.blocks import MaskedMHCA
from tal.loc_actionformer.modeling.heads import ClsHead, RegHead, empty_label_ids
from tal.loc_actionformer.modeling.losses import ctr_diou_loss_1d, sigmoid_focal_loss
from tal.loc_actionformer.modeling.neck import FPNIdentity
from tal.loc_actionformer.modeling.points import PointGenerator
from tal.loc_actionformer.postprocess import (
    Candidates,
    LevelOutputs,
    NMSFn,
    apply_nms,
    decode_candidates,
    drop_empty_segments,
    fuse_class_scores,
    grid_to_seconds,
    load_class_scores,
    stitch_windows,
)

logger = logging.getLogger(__name__)


def head_empty_classes(config: ActionFormerConfig) -> list[int]:
    """``train_cfg.head_empty_cls``, plus with ``train_cfg.head_empty_cls_from`` the classes that no
    annotation of that file uses, read now, when the model is built (as the release's ``train.py`` takes
    them from the training set it has just built). A missing file leaves ``head_empty_cls`` as it is:
    it only sets the initial classifier bias, which loaded weights replace."""
    empty = set(config.train_cfg.head_empty_cls)
    path = config.train_cfg.head_empty_cls_from
    if path:
        if Path(path).is_file():
            empty.update(empty_label_ids(read_annotations(path), config.num_classes))
        else:
            logger.info("train_cfg.head_empty_cls_from: %s not found; head_empty_cls stays %s", path, sorted(empty))
    return sorted(empty)


class ActionFormer(nn.Module):
    """Single-stage anchor-free temporal action localization (ActionFormer, ECCV 2022).

    Submodule names (``backbone``, ``neck``, ``cls_head``, ``reg_head``) and all parameter names
    match the release so its checkpoints load with ``strict=True`` (the release's layout is read by
    :mod:`tal.loc_actionformer.release.checkpoint`).

    Args:
        config: the model config.
        nms_fn: NMS used at inference (:class:`~tal.loc_actionformer.postprocess.NMSFn`); ``None``
            uses ``tal.cuda_ops.batched_nms``.
    """

    def __init__(self, config: ActionFormerConfig, nms_fn: NMSFn | None = None) -> None:
        super().__init__()
        self.config = config
        self.nms_fn = nms_fn
        c = config
        self.num_classes = c.num_classes
        self.max_seq_len = c.max_seq_len
        self.fpn_strides = c.fpn_strides
        self.reg_range = [tuple(r) for r in c.regression_range]
        self.max_div_factor = c.max_div_factor
        self.train_cfg = c.train_cfg
        self.test_cfg = c.test_cfg

        self.backbone = ConvTransformerBackbone(
            c.input_dim,
            c.embd_dim,
            c.n_head,
            c.embd_kernel_size,
            c.max_seq_len,
            arch=c.backbone_arch,
            mha_win_size=c.mha_win_sizes,
            scale_factor=c.scale_factor,
            with_ln=c.embd_with_ln,
            attn_pdrop=0.0,
            proj_pdrop=c.train_cfg.dropout,
            path_pdrop=c.train_cfg.droppath,
            use_abs_pe=c.use_abs_pe,
            use_rel_pe=c.use_rel_pe,
            attn_impl=c.attn_impl,
        )
        self.neck = FPNIdentity(
            [c.total_embd_dim] * (c.backbone_arch[2] + 1),
            c.fpn_dim,
            scale_factor=c.scale_factor,
            start_level=c.fpn_start_level,
            with_ln=c.fpn_with_ln,
        )
        self.point_generator = PointGenerator(c.max_seq_len * c.max_buffer_len_factor, self.fpn_strides, self.reg_range)
        self.cls_head = ClsHead(
            c.fpn_dim,
            c.head_dim,
            c.num_classes,
            prior_prob=c.train_cfg.cls_prior_prob,
            num_layers=c.head_num_layers,
            kernel_size=c.head_kernel_size,
            with_ln=c.head_with_ln,
            empty_cls=head_empty_classes(c),
        )
        self.reg_head = RegHead(
            c.fpn_dim,
            c.head_dim,
            len(self.fpn_strides),
            num_layers=c.head_num_layers,
            kernel_size=c.head_kernel_size,
            with_ln=c.head_with_ln,
        )
        # EMA of the number of positive points, used to normalize the losses (plain float, as in the release).
        # It is carried in the state dict's metadata, not as a key, so that resuming training is exact
        # while the keys stay those of the release.
        self.loss_normalizer = float(c.train_cfg.init_loss_norm)
        self.loss_normalizer_momentum = 0.9
        self.register_state_dict_post_hook(_save_loss_normalizer)
        self.register_load_state_dict_pre_hook(_load_loss_normalizer)
        # video-level class scores fused at inference when test_cfg.ext_score_file is set (read on first use)
        self.class_scores: dict[str, np.ndarray] | None = None

    # -- helpers --------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def compile_network(self, **compile_kwargs: Any) -> None:
        """``torch.compile`` the dense part of the model (:meth:`forward_features`: backbone, neck, heads).

        Padding, label assignment, losses, decoding and NMS stay eager (they depend on the data's
        values). ``compile_kwargs`` go to ``torch.compile`` (e.g. ``backend="aot_eager"``, ``dynamic=False``).
        """
        self.forward_features = torch.compile(self.forward_features, **compile_kwargs)  # type: ignore[method-assign]

    def set_attention_impl(self, impl: AttnImpl) -> None:
        """Switch every local-attention layer to ``"blocked_sdpa"`` or ``"band_mask"``."""
        for m in self.modules():
            if isinstance(m, MaskedMHCA):
                m.impl = impl

    # -- forward --------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor] | list[Segments]:
        """Training: ``{"cls_loss", "reg_loss", "loss"}``; eval: one :class:`Segments` (seconds) per video."""
        features = _feature_list(batch)
        if not self.training:
            return self.postprocess(self.detect(features), batch)
        inputs, masks = self.preprocess(features)
        points, fpn_masks, cls_logits, offsets = self.forward_features(inputs, masks)
        gt_segments, gt_labels = _targets(batch, self.device)
        gt_cls, gt_offsets = self.label_points(points, gt_segments, gt_labels)
        return self.losses(fpn_masks, cls_logits, offsets, gt_cls, gt_offsets)

    @torch.no_grad()
    def detect(self, features: Sequence[torch.Tensor]) -> list[Candidates]:
        """Candidate detections (grid units, before NMS) of ``[(C, T_i)]``; see :meth:`decode`.

        Videos longer than ``config.infer_window`` run window by window
        (:func:`tal.loc_actionformer.postprocess.stitch_windows`), the others as one padded batch.
        """
        if self.config.use_abs_pe and len(features) > 1:
            raise ConfigError(
                f"model.use_abs_pe: inference takes one video per batch, got {len(features)} (the position "
                "embedding is resized to the padded length, which would depend on the other videos; the release "
                "asserts a batch of one); set train.eval_batch_size: 1"
            )
        window = self.config.infer_window
        whole = [i for i, f in enumerate(features) if window is None or f.shape[-1] <= window]
        dets: list[Candidates | None] = [None] * len(features)
        if whole:
            inputs, masks = self.preprocess([features[i] for i in whole])
            outputs = self.forward_features(inputs, masks)
            del inputs, masks
            for i, d in zip(whole, self.decode(*outputs), strict=True):
                dets[i] = d
            del outputs
        for i, f in enumerate(features):
            if dets[i] is None:
                dets[i] = self.decode(*self.windowed_outputs(f))[0]
        return [d for d in dets if d is not None]

    @torch.no_grad()
    def windowed_outputs(
        self, features: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """:meth:`forward_features` of one video ``(C, T)`` computed window by window
        (:func:`~tal.loc_actionformer.postprocess.stitch_windows`); the same outputs as a whole run."""

        def run_window(x: torch.Tensor) -> LevelOutputs:
            inputs, masks = self.preprocess([x])
            _, w_masks, w_logits, w_offsets = self.forward_features(inputs, masks)
            return w_masks, w_logits, w_offsets

        full = self.padded_length(features.shape[-1])
        masks, logits, offsets = stitch_windows(features, self.config, full, run_window, self.device)
        points = self.point_generator([torch.empty(1, 1, full // s, device=self.device) for s in self.fpn_strides])
        return points, masks, logits, offsets

    def padded_length(self, length: int) -> int:
        """Length an input of ``length`` steps is padded to: ``max_seq_len``, or for longer inputs at
        inference the next multiple of ``max_div_factor``."""
        if length <= self.max_seq_len:
            return self.max_seq_len
        if self.training:
            raise ValueError(f"training input of length {length} exceeds max_seq_len {self.max_seq_len}")
        return math.ceil(length / self.max_div_factor) * self.max_div_factor

    @torch.no_grad()
    def preprocess(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad ``[(C, T_i)]`` into ``(B, C, T)`` inputs and a ``(B, 1, T)`` mask.

        Training pads to ``max_seq_len`` (longer inputs are an error); inference pads to
        ``max_seq_len``, or for longer inputs to the next multiple of ``max_div_factor``.
        """
        lens = torch.as_tensor([f.shape[-1] for f in features])
        t = self.padded_length(int(lens.max()))
        if len(features) == 1 and features[0].shape[-1] == t:
            inputs = features[0].unsqueeze(0).to(self.device)  # no copy
        else:
            inputs = features[0].new_zeros(len(features), features[0].shape[0], t, device=self.device)
            for i, f in enumerate(features):
                inputs[i, :, : f.shape[-1]] = f
        masks = (torch.arange(t)[None, :] < lens[:, None]).unsqueeze(1).to(self.device)
        return inputs, masks

    def forward_features(
        self, inputs: torch.Tensor, masks: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Run the network on padded inputs ``(B, C, T)`` with masks ``(B, 1, T)``.

        Returns per level: points ``(T_l, 4)``, masks ``(B, T_l)``, class logits ``(B, T_l, K)`` and
        offsets ``(B, T_l, 2)`` (in units of the level's stride).
        """
        feats, feat_masks = self.backbone(inputs, masks)
        fpn_feats, fpn_masks = self.neck(feats, feat_masks)
        points = self.point_generator(fpn_feats)
        cls_logits = [x.permute(0, 2, 1) for x in self.cls_head(fpn_feats, fpn_masks)]
        offsets = [x.permute(0, 2, 1) for x in self.reg_head(fpn_feats, fpn_masks)]
        return points, [m.squeeze(1) for m in fpn_masks], cls_logits, offsets

    # -- training -------------------------------------------------------------------------------
    @torch.no_grad()
    def label_points(
        self, points: Sequence[torch.Tensor], gt_segments: Sequence[torch.Tensor], gt_labels: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Targets for every point of every level, per video: classes ``(FT, K)`` and offsets ``(FT, 2)``."""
        concat = torch.cat(list(points), dim=0)
        out = [self.label_points_single_video(concat, s, lab) for s, lab in zip(gt_segments, gt_labels, strict=True)]
        return [o[0] for o in out], [o[1] for o in out]

    @torch.no_grad()
    def label_points_single_video(
        self, points: torch.Tensor, gt_segment: torch.Tensor, gt_label: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Assign ground truth to points ``(FT, 4)`` given segments ``(N, 2)`` (grid units) and labels ``(N,)``.

        A point is positive for a segment if it lies within ``radius * stride`` of the segment centre
        (clipped to the segment; or anywhere inside with ``center_sample="none"``) and its largest
        distance to the boundaries is within the level's regression range. Among several candidates the
        shortest segment wins; every candidate within 1e-3 of that length adds its class. Offsets are
        the (left, right) distances divided by the stride.
        """
        num_pts, num_gts = points.shape[0], gt_segment.shape[0]
        gt_segment = gt_segment.to(points.dtype)
        if num_gts == 0:
            return points.new_zeros(num_pts, self.num_classes), points.new_zeros(num_pts, 2)
        t, lo, hi, stride = (points[:, i, None] for i in range(4))
        starts, ends = gt_segment[None, :, 0], gt_segment[None, :, 1]
        left, right = t - starts, ends - t  # (FT, N)
        if self.train_cfg.center_sample == "radius":
            centre = 0.5 * (starts + ends)
            r = stride * self.train_cfg.center_sample_radius
            inside = torch.minimum(t - torch.maximum(centre - r, starts), torch.minimum(centre + r, ends) - t) > 0
        else:
            inside = torch.minimum(left, right) > 0
        reach = torch.maximum(left, right)
        in_range = (reach >= lo) & (reach <= hi)
        lens = (ends - starts).expand(num_pts, num_gts).masked_fill(~(inside & in_range), float("inf"))
        min_len, min_idx = lens.min(dim=1)
        winners = ((lens <= min_len[:, None] + 1e-3) & torch.isfinite(lens)).to(points.dtype)
        cls_targets = (winners @ F.one_hot(gt_label.long(), self.num_classes).to(points.dtype)).clamp_(0.0, 1.0)
        rows = torch.arange(num_pts, device=points.device)
        reg_targets = torch.stack((left[rows, min_idx], right[rows, min_idx]), dim=-1) / stride
        return cls_targets, reg_targets

    def losses(
        self,
        fpn_masks: Sequence[torch.Tensor],
        cls_logits: Sequence[torch.Tensor],
        offsets: Sequence[torch.Tensor],
        gt_cls: Sequence[torch.Tensor],
        gt_offsets: Sequence[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Focal + DIoU losses, each summed and divided by the EMA of the positive count (updated here).

        Under DDP the positives are counted over every process, so that the EMA is that of the global
        batch, and each process divides by its share of it: N processes train as one with the global
        batch (the losses averaged over processes and the gradients DDP averages equal one process's).
        """
        valid = torch.cat(list(fpn_masks), dim=1)  # (B, FT)
        gt_cls_all = torch.stack(list(gt_cls))  # (B, FT, K)
        pos = (gt_cls_all.sum(-1) > 0) & valid
        pred_off = torch.cat(list(offsets), dim=1)[pos]
        tgt_off = torch.stack(list(gt_offsets))[pos]
        num_pos = int(pos.sum().item())
        # one all-reduce: (positives of every process, number of processes)
        total_pos, processes = sum_across_processes(torch.tensor([float(num_pos), 1.0], device=pos.device)).tolist()
        m = self.loss_normalizer_momentum
        self.loss_normalizer = m * self.loss_normalizer + (1 - m) * max(total_pos, 1.0)
        normalizer = self.loss_normalizer / processes

        ls = self.train_cfg.label_smoothing
        target = gt_cls_all[valid] * (1 - ls) + ls / (self.num_classes + 1)
        cls_loss = sigmoid_focal_loss(torch.cat(list(cls_logits), dim=1)[valid], target, reduction="sum")
        cls_loss = cls_loss / normalizer
        if num_pos == 0:
            reg_loss = 0.0 * pred_off.float().sum()
        else:
            reg_loss = ctr_diou_loss_1d(pred_off, tgt_off, reduction="sum") / normalizer
        if self.train_cfg.loss_weight > 0:
            weight: float | torch.Tensor = self.train_cfg.loss_weight
        else:
            weight = cls_loss.detach() / max(reg_loss.item(), 0.01)
        return {"cls_loss": cls_loss, "reg_loss": reg_loss, "loss": cls_loss + reg_loss * weight}

    # -- inference ------------------------------------------------------------------------------
    def decode(
        self,
        points: Sequence[torch.Tensor],
        fpn_masks: Sequence[torch.Tensor],
        cls_logits: Sequence[torch.Tensor],
        offsets: Sequence[torch.Tensor],
    ) -> list[Candidates]:
        """Candidate detections per video (before NMS, grid units) with this model's ``test_cfg``
        (:func:`~tal.loc_actionformer.postprocess.decode_candidates`)."""
        return decode_candidates(points, fpn_masks, cls_logits, offsets, self.test_cfg)

    @torch.no_grad()
    def postprocess(
        self, dets: Sequence[Candidates], batch: Mapping[str, Any], *, drop_empty: bool = False
    ) -> list[Segments]:
        """NMS (unless ``nms_method == "none"``), grid units → seconds clipped to ``[0, duration]`` per
        video, then fusion with ``test_cfg.ext_score_file`` when set.

        With ``drop_empty`` the detections that the clipping made empty (past a duration shorter than
        the features span) are dropped, with a warning naming how many.
        """
        meta = {k: _per_video(batch, k, len(dets)) for k in ("fps", "feat_stride", "num_frames", "duration")}
        ids = batch.get("video_ids") or [f"video {i}" for i in range(len(dets))]
        out = []
        for i, d in enumerate(dets):
            segs, scores, labels = apply_nms(d, self.test_cfg, self.nms_fn)
            fps, stride, nframes, duration = (meta[k][i] for k in ("fps", "feat_stride", "num_frames", "duration"))
            video = Segments(grid_to_seconds(segs, fps, stride, nframes, duration), labels, scores)
            if drop_empty:
                video, dropped = drop_empty_segments(video)
                if dropped:
                    logger.warning(
                        "%s: %d of %d detections lie past the duration %.2f s: clipping made them empty, dropped",
                        ids[i],
                        dropped,
                        dropped + len(video),
                        duration,
                    )
            out.append(video)
        if self.test_cfg.ext_score_file:
            out = self.fuse(out, batch)
        return out

    def fuse(self, detections: Sequence[Segments], batch: Mapping[str, Any]) -> list[Segments]:
        """Fuse each video's detections with the scores of ``test_cfg.ext_score_file``
        (:func:`~tal.loc_actionformer.postprocess.fuse_class_scores`); videos are named by ``batch["video_ids"]``."""
        if self.class_scores is None:
            assert self.test_cfg.ext_score_file is not None
            self.class_scores = load_class_scores(self.test_cfg.ext_score_file)
        ids = batch.get("video_ids")
        if ids is None or len(ids) != len(detections):
            raise ValueError("score fusion (test_cfg.ext_score_file) needs batch['video_ids'], one per video")
        out = []
        for vid, dets in zip(ids, detections, strict=True):
            if vid not in self.class_scores:
                raise KeyError(
                    f"video {vid!r} has no entry in {self.test_cfg.ext_score_file} (test_cfg.ext_score_file); "
                    "set test_cfg.ext_score_file to null to keep the class-agnostic detections"
                )
            out.append(fuse_class_scores(dets, self.class_scores[vid]))
        return out


def _save_loss_normalizer(module: Any, state_dict: Any, prefix: str, local_metadata: dict[str, Any]) -> None:
    local_metadata["loss_normalizer"] = float(module.loss_normalizer)


def _load_loss_normalizer(module: Any, state_dict: Any, prefix: str, local_metadata: dict[str, Any], *_: Any) -> None:
    if "loss_normalizer" in local_metadata:
        module.loss_normalizer = float(local_metadata["loss_normalizer"])


def build_model(config: ActionFormerConfig, nms_fn: NMSFn | None = None) -> ActionFormer:
    """Factory for the registry: ``ActionFormer(config, nms_fn)``."""
    return ActionFormer(config, nms_fn=nms_fn)


def _feature_list(batch: Mapping[str, Any]) -> list[torch.Tensor]:
    feats = batch["features"]
    if isinstance(feats, torch.Tensor):
        if feats.dim() != 3:
            raise ValueError(f"batch['features'] must be (B, C, T), got {tuple(feats.shape)}")
        lengths = batch.get("lengths")
        if lengths is None:
            return list(feats.unbind(0))
        return [f[:, : int(n)] for f, n in zip(feats.unbind(0), lengths, strict=True)]
    return list(feats)


def _targets(batch: Mapping[str, Any], device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    if "segments" in batch and "labels" in batch:
        segs, labels = batch["segments"], batch["labels"]
    elif "targets" in batch:
        segs = [t.segments for t in batch["targets"]]
        labels = [t.labels for t in batch["targets"]]
    else:
        raise ValueError("training needs batch['segments'] and batch['labels'] (or batch['targets'])")
    segs = [torch.as_tensor(s, dtype=torch.float32, device=device).reshape(-1, 2) for s in segs]
    labels = [torch.as_tensor(lab, dtype=torch.int64, device=device).reshape(-1) for lab in labels]
    return segs, labels


def _per_video(batch: Mapping[str, Any], key: str, n: int) -> list[float]:
    if key not in batch:
        raise ValueError(f"inference needs batch[{key!r}] (one value per video) to convert to seconds")
    v = batch[key]
    vals = v.tolist() if isinstance(v, torch.Tensor) else list(v) if isinstance(v, Sequence) else [v] * n
    if len(vals) != n:
        raise ValueError(f"batch[{key!r}] has {len(vals)} values for {n} videos")
    return [float(x) for x in vals]
