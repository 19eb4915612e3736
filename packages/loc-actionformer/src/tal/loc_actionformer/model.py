"""The ActionFormer model (the release's ``LocPointTransformer``): backbone → neck → heads → losses / detections.

Batch contract of :meth:`ActionFormer.forward` (a mapping, one entry per video where a list):

- ``features``: list of ``(C, T_i)`` tensors, or a ``(B, C, T)`` tensor (with optional ``lengths (B,)``);
- training: ``segments`` (list of ``(N_i, 2)`` float, **feature-grid units**) and ``labels`` (list of
  ``(N_i,)`` int64), or ``targets`` (list of :class:`tal.core.types.Segments` in grid units);
- eval: ``fps``, ``feat_stride``, ``num_frames``, ``duration`` (one number per video) to convert
  detections to seconds; ``video_ids`` is passed through untouched by the model.

:func:`batch_from_records` builds such a batch from :class:`tal.core.types.VideoRecord` objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tal.core.types import Segments, VideoRecord
from tal.loc_actionformer.backbone import ConvTransformerBackbone
from tal.loc_actionformer.blocks import AttnImpl, MaskedMHCA
from tal.loc_actionformer.config import ActionFormerConfig
from tal.loc_actionformer.fusion import fuse_class_scores, load_class_scores
from tal.loc_actionformer.heads import ClsHead, RegHead
from tal.loc_actionformer.losses import ctr_diou_loss_1d, sigmoid_focal_loss
from tal.loc_actionformer.neck import FPNIdentity
from tal.loc_actionformer.points import PointGenerator
from tal.loc_actionformer.windowed import windowed_outputs


class NMSFn(Protocol):
    """Batched (soft-)NMS as the release's ``batched_nms``: grid-unit segments in, kept ones out.

    Args:
        segments: ``(N, 2)`` float; scores ``(N,)``; labels ``(N,)`` int64.
        iou_threshold, min_score, max_seg_num, use_soft_nms, multiclass, sigma, voting_thresh:
            the release's ``test_cfg`` values (``use_soft_nms = nms_method == "soft"``).

    Returns:
        ``(segments (K, 2), scores (K,), labels (K,))`` sorted by descending score, ``K <= max_seg_num``.
    """

    def __call__(
        self,
        segments: torch.Tensor,
        scores: torch.Tensor,
        labels: torch.Tensor,
        /,
        *,
        iou_threshold: float,
        min_score: float,
        max_seg_num: int,
        use_soft_nms: bool,
        multiclass: bool,
        sigma: float,
        voting_thresh: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


def _default_nms() -> NMSFn:
    try:
        from tal.cuda_ops import batched_nms  # type: ignore[attr-defined]
    except ImportError as err:  # pragma: no cover - depends on tal-cuda-ops being installed
        raise RuntimeError(
            "ActionFormer needs an NMS function: install tal-cuda-ops (tal.cuda_ops.batched_nms), pass "
            "`nms_fn=` to ActionFormer, or set test_cfg.nms_method='none'"
        ) from err
    return batched_nms


class ActionFormer(nn.Module):
    """Single-stage anchor-free temporal action localization (ActionFormer, ECCV 2022).

    Submodule names (``backbone``, ``neck``, ``cls_head``, ``reg_head``) and all parameter names
    match the release so its checkpoints load with ``strict=True`` (see
    :func:`tal.loc_actionformer.checkpoint.load_official_checkpoint`).

    Args:
        config: the model config.
        nms_fn: NMS used at inference (:class:`NMSFn`); ``None`` uses ``tal.cuda_ops.batched_nms``.
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
            empty_cls=c.train_cfg.head_empty_cls,
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
    def detect(self, features: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Candidate detections (grid units, before NMS) of ``[(C, T_i)]``; see :meth:`decode`.

        Videos longer than ``config.infer_window`` run window by window
        (:func:`tal.loc_actionformer.windowed.windowed_outputs`), the others as one padded batch.
        """
        window = self.config.infer_window
        whole = [i for i, f in enumerate(features) if window is None or f.shape[-1] <= window]
        dets: list[dict[str, torch.Tensor] | None] = [None] * len(features)
        if whole:
            inputs, masks = self.preprocess([features[i] for i in whole])
            outputs = self.forward_features(inputs, masks)
            del inputs, masks
            for i, d in zip(whole, self.decode(*outputs), strict=True):
                dets[i] = d
            del outputs
        for i, f in enumerate(features):
            if dets[i] is None:
                dets[i] = self.decode(*windowed_outputs(self, f))[0]
        return [d for d in dets if d is not None]

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
        """Focal + DIoU losses, each summed and divided by the EMA of the positive count (updated here)."""
        valid = torch.cat(list(fpn_masks), dim=1)  # (B, FT)
        gt_cls_all = torch.stack(list(gt_cls))  # (B, FT, K)
        pos = (gt_cls_all.sum(-1) > 0) & valid
        pred_off = torch.cat(list(offsets), dim=1)[pos]
        tgt_off = torch.stack(list(gt_offsets))[pos]
        num_pos = int(pos.sum().item())
        m = self.loss_normalizer_momentum
        self.loss_normalizer = m * self.loss_normalizer + (1 - m) * max(num_pos, 1)

        ls = self.train_cfg.label_smoothing
        target = gt_cls_all[valid] * (1 - ls) + ls / (self.num_classes + 1)
        cls_loss = sigmoid_focal_loss(torch.cat(list(cls_logits), dim=1)[valid], target, reduction="sum")
        cls_loss = cls_loss / self.loss_normalizer
        if num_pos == 0:
            reg_loss = 0.0 * pred_off.float().sum()
        else:
            reg_loss = ctr_diou_loss_1d(pred_off, tgt_off, reduction="sum") / self.loss_normalizer
        if self.train_cfg.loss_weight > 0:
            weight: float | torch.Tensor = self.train_cfg.loss_weight
        else:
            weight = cls_loss.detach() / max(reg_loss.item(), 0.01)
        return {"cls_loss": cls_loss, "reg_loss": reg_loss, "loss": cls_loss + reg_loss * weight}

    # -- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(
        self,
        points: Sequence[torch.Tensor],
        fpn_masks: Sequence[torch.Tensor],
        cls_logits: Sequence[torch.Tensor],
        offsets: Sequence[torch.Tensor],
    ) -> list[dict[str, torch.Tensor]]:
        """Candidate detections per video (before NMS), in feature-grid units.

        Per level: keep scores above ``pre_nms_thresh``, then the ``pre_nms_topk`` best; decode
        ``(t - l * s, t + r * s)``; drop segments not longer than ``duration_thresh``.

        Returns:
            per video ``{"segments": (N, 2), "scores": (N,), "labels": (N,)}``.
        """
        tc = self.test_cfg
        results = []
        for b in range(cls_logits[0].shape[0]):
            segs, scores, labels = [], [], []
            for logit, off, pts, mask in zip(cls_logits, offsets, points, fpn_masks, strict=True):
                prob = (logit[b].float().sigmoid() * mask[b, :, None]).flatten()
                keep = torch.nonzero(prob > tc.pre_nms_thresh).squeeze(1)
                prob = prob[keep]
                prob, order = prob.sort(descending=True, stable=True)
                k = min(tc.pre_nms_topk, keep.numel())
                prob, idx = prob[:k], keep[order[:k]]
                pt_idx = torch.div(idx, self.num_classes, rounding_mode="floor")
                cls_idx = idx % self.num_classes
                o, p = off[b, pt_idx].float(), pts[pt_idx]
                seg = torch.stack((p[:, 0] - o[:, 0] * p[:, 3], p[:, 0] + o[:, 1] * p[:, 3]), dim=-1)
                ok = (seg[:, 1] - seg[:, 0]) > tc.duration_thresh
                segs.append(seg[ok])
                scores.append(prob[ok])
                labels.append(cls_idx[ok])
            results.append({"segments": torch.cat(segs), "scores": torch.cat(scores), "labels": torch.cat(labels)})
        return results

    @torch.no_grad()
    def postprocess(self, dets: Sequence[Mapping[str, torch.Tensor]], batch: Mapping[str, Any]) -> list[Segments]:
        """NMS (unless ``nms_method == "none"``), then grid units → seconds per video.

        ``t = (g * feat_stride + 0.5 * num_frames) / fps``, clipped to ``[0, duration]``.
        """
        tc = self.test_cfg
        meta = {k: _per_video(batch, k, len(dets)) for k in ("fps", "feat_stride", "num_frames", "duration")}
        nms: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        if tc.nms_method != "none":
            nms = self.nms_fn if self.nms_fn is not None else _default_nms()
        out = []
        for i, d in enumerate(dets):
            segs, scores, labels = d["segments"].cpu(), d["scores"].cpu(), d["labels"].cpu()
            if nms is not None:
                segs, scores, labels = nms(
                    segs,
                    scores,
                    labels,
                    iou_threshold=tc.iou_threshold,
                    min_score=tc.min_score,
                    max_seg_num=tc.max_seg_num,
                    use_soft_nms=tc.nms_method == "soft",
                    multiclass=tc.multiclass_nms,
                    sigma=tc.nms_sigma,
                    voting_thresh=tc.voting_thresh,
                )
            fps, stride, nframes, duration = (meta[k][i] for k in ("fps", "feat_stride", "num_frames", "duration"))
            secs = ((segs.double() * stride + 0.5 * nframes) / fps).clamp(min=0.0, max=duration)
            out.append(Segments(secs, labels, scores))
        if tc.ext_score_file:
            out = self.fuse(out, batch)
        return out

    def fuse(self, detections: Sequence[Segments], batch: Mapping[str, Any]) -> list[Segments]:
        """Fuse each video's detections with the scores of ``test_cfg.ext_score_file`` (see
        :mod:`tal.loc_actionformer.fusion`); videos must be named by ``batch["video_ids"]``."""
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


def batch_from_records(records: Sequence[VideoRecord]) -> dict[str, Any]:
    """A model batch from core video records (ground truth converted from seconds to the feature grid)."""
    batch: dict[str, Any] = {
        "video_ids": [r.video_id for r in records],
        "features": [r.features for r in records],
        "fps": [float(r.fps) for r in records],
        "feat_stride": [float(r.feat_stride) for r in records],
        "num_frames": [float(r.num_frames) for r in records],
        "duration": [float(r.duration) for r in records],
    }
    if any(r.features is None for r in records):
        raise ValueError("every video record needs its features loaded")
    if all(r.segments is not None for r in records):
        gts = [r.segments for r in records if r.segments is not None]
        batch["segments"] = [r.seconds_to_grid(g.segments).float() for r, g in zip(records, gts, strict=True)]
        batch["labels"] = [g.labels for g in gts]
    return batch


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
