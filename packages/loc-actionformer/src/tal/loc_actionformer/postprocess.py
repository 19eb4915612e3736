"""From the network's outputs to detections in seconds: decoding, NMS, grid → seconds, score fusion,
and the window layout of long videos.

Everything here works on plain tensors and the model's config: the model
(:class:`tal.loc_actionformer.modeling.meta_arch.ActionFormer`) calls these functions, never the
other way round.

- :func:`decode_candidates`: per pyramid level, the scores above ``pre_nms_thresh``, the ``pre_nms_topk`` best,
  segments ``(t - l * s, t + r * s)`` on the feature grid, those longer than ``duration_thresh``.
- :func:`apply_nms`: the release's batched (soft-)NMS, by default ``tal.cuda_ops.batched_nms``.
- :func:`grid_to_seconds`: ``t = (g * feat_stride + 0.5 * num_frames) / fps``, clipped to
  ``[0, duration]``; :func:`drop_empty_segments` drops what the clipping made empty (detections past
  the duration, when the duration is shorter than the features span).
- :func:`load_class_scores`, :func:`fuse_class_scores`: the release's fusion of class-agnostic
  detections with external video-level class scores (``test_cfg.ext_score_file``).
- :func:`receptive_radius`, :func:`window_bounds`, :func:`stitch_windows`: windowed inference. A
  window covers ``core`` steps plus ``context`` steps on either side; only the outputs of points in
  its core are kept and written into full-length per-level tensors, which are then decoded as a
  whole run's. With ``context`` at least the network's receptive radius every kept output sees
  exactly the inputs it sees in a whole run, so the detections are the same while the peak memory
  is that of one window. Window bounds are multiples of ``max_div_factor`` so that every level's
  grid lines up with the whole run's.
"""

from __future__ import annotations

import io
import json
import math
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from tal.core.errors import DataFormatError
from tal.core.types import Segments
from tal.loc_actionformer.config import ActionFormerConfig, ActionFormerTestCfg

#: one video's candidates before NMS: ``{"segments": (N, 2) grid units, "scores": (N,), "labels": (N,)}``
Candidates = dict[str, torch.Tensor]
#: per-level network outputs of a batch: masks ``(B, T_l)``, class logits ``(B, T_l, K)``, offsets ``(B, T_l, 2)``
LevelOutputs = tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]


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


def default_nms() -> NMSFn:
    """``tal.cuda_ops.batched_nms`` (a clear error when tal-cuda-ops is not installed)."""
    try:
        from tal.cuda_ops import batched_nms  # type: ignore[attr-defined]
    except ImportError as err:  # pragma: no cover - depends on tal-cuda-ops being installed
        raise RuntimeError(
            "ActionFormer needs an NMS function: install tal-cuda-ops (tal.cuda_ops.batched_nms), pass "
            "`nms_fn=` to ActionFormer, or set test_cfg.nms_method='none'"
        ) from err
    return batched_nms


# ---------------------------------------------------------------------------------------------
# Decoding, NMS, seconds
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def decode_candidates(
    points: Sequence[torch.Tensor],
    fpn_masks: Sequence[torch.Tensor],
    cls_logits: Sequence[torch.Tensor],
    offsets: Sequence[torch.Tensor],
    test_cfg: ActionFormerTestCfg,
) -> list[Candidates]:
    """Candidate detections per video (before NMS), in feature-grid units.

    Args:
        points: per level ``(T_l, 4)`` = ``[t, reg_min, reg_max, stride]``.
        fpn_masks: per level ``(B, T_l)`` bool; cls_logits ``(B, T_l, K)``; offsets ``(B, T_l, 2)``
            (in units of the level's stride).

    Per level: keep scores above ``pre_nms_thresh``, then the ``pre_nms_topk`` best; decode
    ``(t - l * s, t + r * s)``; drop segments not longer than ``duration_thresh``.
    """
    tc = test_cfg
    results = []
    for b in range(cls_logits[0].shape[0]):
        segs, scores, labels = [], [], []
        for logit, off, pts, mask in zip(cls_logits, offsets, points, fpn_masks, strict=True):
            num_classes = logit.shape[-1]
            prob = (logit[b].float().sigmoid() * mask[b, :, None]).flatten()
            keep = torch.nonzero(prob > tc.pre_nms_thresh).squeeze(1)
            prob = prob[keep]
            prob, order = prob.sort(descending=True, stable=True)
            k = min(tc.pre_nms_topk, keep.numel())
            prob, idx = prob[:k], keep[order[:k]]
            pt_idx = torch.div(idx, num_classes, rounding_mode="floor")
            cls_idx = idx % num_classes
            o, p = off[b, pt_idx].float(), pts[pt_idx]
            seg = torch.stack((p[:, 0] - o[:, 0] * p[:, 3], p[:, 0] + o[:, 1] * p[:, 3]), dim=-1)
            ok = (seg[:, 1] - seg[:, 0]) > tc.duration_thresh
            segs.append(seg[ok])
            scores.append(prob[ok])
            labels.append(cls_idx[ok])
        results.append({"segments": torch.cat(segs), "scores": torch.cat(scores), "labels": torch.cat(labels)})
    return results


def apply_nms(
    candidates: Candidates, test_cfg: ActionFormerTestCfg, nms_fn: NMSFn | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(segments, scores, labels)`` of one video after ``test_cfg``'s NMS (on the CPU; unchanged with
    ``nms_method: none``). ``nms_fn`` defaults to ``tal.cuda_ops.batched_nms``."""
    tc = test_cfg
    segs, scores, labels = (candidates[k].cpu() for k in ("segments", "scores", "labels"))
    if tc.nms_method == "none":
        return segs, scores, labels
    nms = nms_fn if nms_fn is not None else default_nms()
    return nms(
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


def grid_to_seconds(
    segments: torch.Tensor, fps: float, feat_stride: float, num_frames: float, duration: float
) -> torch.Tensor:
    """Feature-grid segments ``(N, 2)`` → seconds (float64): ``(g * feat_stride + 0.5 * num_frames) / fps``,
    clipped to ``[0, duration]``."""
    return ((segments.double() * feat_stride + 0.5 * num_frames) / fps).clamp(min=0.0, max=duration)


def drop_empty_segments(detections: Segments) -> tuple[Segments, int]:
    """``detections`` without the segments of zero or negative length, and how many were dropped.

    After clipping to ``[0, duration]`` these are the detections that lie entirely past the duration
    (or before 0): empty segments, which the release's ``duration_thresh`` never lets through.
    """
    keep = detections.segments[:, 1] > detections.segments[:, 0]
    dropped = int((~keep).sum())
    if dropped == 0:
        return detections, 0
    scores = detections.scores[keep] if detections.scores is not None else None
    return Segments(detections.segments[keep], detections.labels[keep], scores), dropped


# ---------------------------------------------------------------------------------------------
# Fusion with external video-level class scores (test_cfg.ext_score_file)
# ---------------------------------------------------------------------------------------------
# The release's ActivityNet configs train one "action" class and, at evaluation, combine each
# video's detections with an external classifier's scores (its ``postprocess_results``): keep the
# ``num_pred`` best detections, take the ``top_k`` classes of the video, and emit every detection
# once per class with score ``sqrt(class_score * detection_score)``, class by class. Score files are
# JSON (``{"results": {video_id: [score per class]}}`` or the bare mapping) or a pickle of
# ``{video_id: array}`` read with an unpickler that only builds dicts, lists, numbers, strings and
# NumPy arrays: nothing else in the file can run.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only NumPy arrays and plain values)")


def load_class_scores(path: str | Path) -> dict[str, np.ndarray]:
    """``{video_id: (num_classes,) float64}`` from a JSON or pickle score file."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(p, "external classification score file (test_cfg.ext_score_file) not found")
    raw: Any
    try:
        if p.suffix.lower() == ".json":
            raw = json.loads(p.read_text(encoding="utf-8"))
        else:
            raw = _ArrayUnpickler(io.BytesIO(p.read_bytes())).load()
    except (json.JSONDecodeError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataFormatError(p, f"cannot read the class scores: {exc}") from None
    if isinstance(raw, Mapping) and "results" in raw and isinstance(raw["results"], Mapping):
        raw = raw["results"]
    if not isinstance(raw, Mapping):
        raise DataFormatError(p, f"expected a mapping of video id to class scores, got {type(raw).__name__}")
    out: dict[str, np.ndarray] = {}
    for vid, scores in raw.items():
        arr = np.asarray(scores, dtype=np.float64).reshape(-1)
        if arr.size == 0 or not np.isfinite(arr).all():
            raise DataFormatError(p, "class scores must be a non-empty list of finite numbers", str(vid))
        out[str(vid)] = arr
    return out


def fuse_class_scores(dets: Segments, class_scores: np.ndarray, top_k: int = 2, num_pred: int = 200) -> Segments:
    """Combine one video's detections with its classification scores ``(num_classes,)``.

    Returns ``top_k * min(num_pred, N)`` detections, class by class (best class first); the labels
    of ``dets`` are replaced.
    """
    if dets.scores is None:
        raise ValueError("fusion needs detection scores")
    scores = dets.scores.double().numpy()
    order = np.argsort(scores, kind="stable")[::-1][:num_pred]
    det_scores = scores[order]
    segs = dets.segments.double().numpy()[order]
    cls_order = np.argsort(class_scores, kind="stable")[::-1][:top_k]
    fused = np.sqrt(class_scores[cls_order][:, None] * det_scores[None, :]).reshape(-1)
    labels = np.repeat(cls_order, len(order))
    return Segments(
        torch.from_numpy(np.tile(segs, (len(cls_order), 1))),
        torch.from_numpy(labels.astype(np.int64)),
        torch.from_numpy(fused),
    )


# ---------------------------------------------------------------------------------------------
# Windowed inference of long videos
# ---------------------------------------------------------------------------------------------
def receptive_radius(config: ActionFormerConfig) -> int | None:
    """Steps on either side of a point that can change its outputs; ``None`` if unbounded.

    Unbounded with global attention on some level or absolute position encodings (both see the
    whole sequence).
    """
    if config.use_abs_pe or any(w <= 1 for w in config.mha_win_sizes):
        return None
    wins = config.mha_win_sizes
    s = config.scale_factor
    radius = config.backbone_arch[0] * (config.embd_kernel_size // 2)  # embedding convs
    radius += config.backbone_arch[1] * (1 + wins[0] // 2)  # stem: depthwise conv + attention
    for i in range(config.backbone_arch[2]):  # branch: strided conv / max-pool, attention at the new stride
        radius += s**i * (s // 2) + s ** (i + 1) * (wins[i + 1] // 2)
    top = s ** config.backbone_arch[2]
    radius += top * config.head_num_layers * (config.head_kernel_size // 2)  # heads on the coarsest level
    return radius


def window_context(config: ActionFormerConfig) -> int:
    """Context steps used for windows: ``infer_context`` or the receptive radius, rounded up to
    a multiple of ``max_div_factor``."""
    div = config.max_div_factor
    ctx = config.infer_context if config.infer_context is not None else receptive_radius(config)
    if ctx is None:  # unbounded receptive field: a quarter window of context (approximate)
        ctx = (config.infer_window or config.max_seq_len) // 4
    return math.ceil(ctx / div) * div


def window_bounds(length: int, window: int, context: int) -> list[tuple[int, int, int, int]]:
    """``(lo, hi, core_lo, core_hi)`` of each window over ``length`` steps (cores tile ``[0, length)``)."""
    core = window - 2 * context
    if core <= 0:
        raise ValueError(f"infer_window {window} leaves no core after {context} steps of context on each side")
    out = []
    for c0 in range(0, length, core):
        c1 = min(c0 + core, length)
        out.append((max(0, c0 - context), min(length, c1 + context), c0, c1))
    return out


@torch.no_grad()
def stitch_windows(
    features: torch.Tensor,
    config: ActionFormerConfig,
    padded_length: int,
    run_window: Callable[[torch.Tensor], LevelOutputs],
    device: torch.device,
) -> LevelOutputs:
    """The per-level outputs of one video ``(C, T)`` computed window by window.

    Args:
        features: ``(C, T)`` with ``T > config.infer_window``.
        padded_length: the length a whole run pads ``T`` to.
        run_window: the network on one window ``(C, t)``: its masks, logits and offsets (batch of one).
        device: where the stitched tensors live.

    Returns:
        What a whole run returns for a batch of one: masks ``(1, T_l)``, class logits ``(1, T_l, K)``
        and offsets ``(1, T_l, 2)`` per level.
    """
    if config.infer_window is None:
        raise ValueError("windowed inference needs config.infer_window")
    length = features.shape[-1]
    strides = config.fpn_strides
    sizes = [padded_length // s for s in strides]
    logits = [torch.zeros(1, n, config.num_classes, device=device) for n in sizes]
    offsets = [torch.zeros(1, n, 2, device=device) for n in sizes]
    masks = [torch.zeros(1, n, dtype=torch.bool, device=device) for n in sizes]
    for lo, hi, c0, c1 in window_bounds(length, config.infer_window, window_context(config)):
        w_masks, w_logits, w_offsets = run_window(features[:, lo:hi])
        end = padded_length if c1 == length else c1  # the last core also covers the padding
        for lvl, s in enumerate(strides):
            a, b = c0 // s, -(-end // s)
            la, lb = a - lo // s, b - lo // s
            logits[lvl][:, a:b] = w_logits[lvl][:, la:lb].float()
            offsets[lvl][:, a:b] = w_offsets[lvl][:, la:lb].float()
            masks[lvl][:, a:b] = w_masks[lvl][:, la:lb]
        del w_masks, w_logits, w_offsets
    return masks, logits, offsets
