"""How a video is cut into the non-overlapping clips SVTAS-RL streams, as the release's sampler cuts it.

The release's ``VideoStreamSampler`` (uniform mode) with ``clip_seg_num = clip_len`` and
``sliding_window = clip_len * sample_rate = W``:

- clip ``k`` covers the frames ``[k * W, min(k * W + W, T))``; a video of ``T`` frames has
  ``ceil(T / W)`` clips (``precise_sliding_num``);
- the model sees every ``sample_rate``-th frame of the clip, ``k * W, k * W + sample_rate, ...``:
  ``clip_len`` sampled frames, the missing tail zero-padded;
- labels and the frame mask stay at the full frame rate: ``W`` entries per clip, labels of frames
  past the end are ``-100`` and their mask is ``False``.

**Which label every input frame gets.** The segmentation head works on tokens of
``stride = sample_rate * backbone_temporal_stride`` frames (the feature-input backbone has temporal
stride 1, so a token is one sampled frame) and its scores are repeated ``stride`` times (the release's
nearest ``F.interpolate``). Frame ``k * W + j`` of clip ``k`` therefore gets the prediction of token
``j // stride``, i.e. of the last sampled frame at or before it (``k * W + (j // stride) * stride``).
Every frame of the video gets exactly one label, and frame ``f``'s label is known once frame
``min((k + 1) * W, T) - 1`` of its clip has arrived.

Tensors of one video have their channels first and time second: features ``(C, T)``, RGB frames
``(3, T, H, W)``. Batches add a leading batch dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100
"""Label of frames past the end of a video (``CrossEntropyLoss``'s ``ignore_index``, as in the release)."""


@dataclass(frozen=True)
class ClipSpec:
    """``clip_len`` sampled frames per clip (the release's ``clip_seg_num``), taken every ``sample_rate`` frames."""

    clip_len: int
    sample_rate: int

    def __post_init__(self) -> None:
        if self.clip_len < 1 or self.sample_rate < 1:
            raise ValueError(f"clip_len and sample_rate must be >= 1, got {self.clip_len} and {self.sample_rate}")

    @property
    def window(self) -> int:
        """Frames per clip, ``W = clip_len * sample_rate`` (the release's ``sliding_window``)."""
        return self.clip_len * self.sample_rate

    def num_clips(self, num_frames: int) -> int:
        """``ceil(T / W)`` clips for ``T`` frames (0 for an empty video)."""
        if num_frames < 0:
            raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        return math.ceil(num_frames / self.window)

    def bounds(self, k: int, num_frames: int) -> tuple[int, int]:
        """First frame and one past the last frame of clip ``k``: ``[k * W, min(k * W + W, T))``."""
        if not 0 <= k < self.num_clips(num_frames):
            raise IndexError(f"clip {k} of a {num_frames}-frame video ({self.num_clips(num_frames)} clips)")
        start = k * self.window
        return start, min(start + self.window, num_frames)


def clip_input(video: torch.Tensor, spec: ClipSpec, k: int) -> torch.Tensor:
    """Sampled frames of clip ``k``: ``video (C, T, ...)`` → ``(C, clip_len, ...)``, zero-padded at the tail."""
    start, end = spec.bounds(k, video.shape[1])
    taken = video[:, start : end : spec.sample_rate]
    missing = spec.clip_len - taken.shape[1]
    if missing == 0:
        return taken.contiguous()
    pad = taken.new_zeros((taken.shape[0], missing, *taken.shape[2:]))
    return torch.cat([taken, pad], dim=1)


def clip_frame_mask(spec: ClipSpec, k: int, num_frames: int) -> torch.Tensor:
    """``(W,)`` bool: which of the clip's ``W`` frame slots hold a frame of the video."""
    start, end = spec.bounds(k, num_frames)
    return torch.arange(spec.window) < (end - start)


def clip_labels(labels: torch.Tensor, spec: ClipSpec, k: int) -> torch.Tensor:
    """Frame labels of clip ``k`` at the full frame rate: ``(T,)`` → ``(W,)`` int64, ``-100`` past the end."""
    start, end = spec.bounds(k, labels.shape[0])
    out = torch.full((spec.window,), IGNORE_INDEX, dtype=torch.int64)
    out[: end - start] = labels[start:end]
    return out


def batch_clip_inputs(
    videos: torch.Tensor, lengths: torch.Tensor, spec: ClipSpec, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip ``k`` of every video of a padded batch.

    Args:
        videos: ``(B, C, T_max, ...)``; frames past ``lengths[b]`` are ignored.
        lengths: ``(B,)`` frames per video.

    Returns:
        ``(B, C, clip_len, ...)`` sampled frames (zeros past each video's end) and the ``(B, W)`` bool
        frame mask. A video with fewer than ``k + 1`` clips gets an all-zero clip and an all-False mask.
    """
    b = videos.shape[0]
    clips = videos.new_zeros((b, videos.shape[1], spec.clip_len, *videos.shape[3:]))
    masks = torch.zeros(b, spec.window, dtype=torch.bool)
    for i in range(b):
        n = int(lengths[i])
        if k < spec.num_clips(n):
            clips[i] = clip_input(videos[i, :, :n], spec, k)
            masks[i] = clip_frame_mask(spec, k, n)
    return clips, masks


def batch_clip_labels(labels: torch.Tensor, lengths: torch.Tensor, spec: ClipSpec, k: int) -> torch.Tensor:
    """``(B, T_max)`` labels → ``(B, W)`` labels of clip ``k``, ``-100`` past each video's end."""
    out = torch.full((labels.shape[0], spec.window), IGNORE_INDEX, dtype=torch.int64)
    for i in range(labels.shape[0]):
        n = int(lengths[i])
        if k < spec.num_clips(n):
            out[i] = clip_labels(labels[i, :n], spec, k)
    return out
