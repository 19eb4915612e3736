"""Clip splitting as the release's VideoStreamSampler, against a frame-by-frame oracle."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracles.clip_oracle import sampled_frames

from tal.stream_rl.clips import (
    ClipSpec,
    batch_clip_inputs,
    batch_clip_labels,
    clip_frame_mask,
    clip_input,
    clip_labels,
)


def test_gtea_clip_by_hand() -> None:
    spec = ClipSpec(clip_len=64, sample_rate=2)
    assert spec.window == 128
    assert spec.num_clips(300) == 3  # [0,128) [128,256) [256,300)
    assert spec.bounds(2, 300) == (256, 300)
    video = torch.arange(300, dtype=torch.float32)[None]  # frame index as the feature
    last = clip_input(video, spec, 2)
    assert last.shape == (1, 64)
    assert last[0, :22].tolist() == list(range(256, 300, 2))  # 22 sampled frames, then zeros
    assert torch.all(last[0, 22:] == 0)
    assert clip_frame_mask(spec, 2, 300).sum() == 44
    labels = torch.arange(300)
    assert clip_labels(labels, spec, 2)[:44].tolist() == list(range(256, 300))
    assert torch.all(clip_labels(labels, spec, 2)[44:] == -100)


def test_empty_and_out_of_range() -> None:
    spec = ClipSpec(4, 3)
    assert spec.num_clips(0) == 0
    with pytest.raises(IndexError):
        spec.bounds(0, 0)
    with pytest.raises(IndexError):
        spec.bounds(2, 24)
    with pytest.raises(ValueError):
        ClipSpec(0, 1)


@given(
    num_frames=st.integers(1, 200),
    clip_len=st.integers(1, 12),
    sample_rate=st.integers(1, 5),
)
def test_sampling_matches_the_release_sampler(num_frames: int, clip_len: int, sample_rate: int) -> None:
    spec = ClipSpec(clip_len, sample_rate)
    expected = sampled_frames(num_frames, clip_len, sample_rate)
    assert spec.num_clips(num_frames) == len(expected)
    video = torch.arange(num_frames, dtype=torch.float64)[None] + 1.0  # +1: zero marks padding
    covered = []
    for k, frames in enumerate(expected):
        clip = clip_input(video, spec, k)[0]
        assert clip[: len(frames)].tolist() == [f + 1.0 for f in frames]
        assert torch.all(clip[len(frames) :] == 0)
        mask = clip_frame_mask(spec, k, num_frames)
        start, end = spec.bounds(k, num_frames)
        covered.extend(range(start, start + int(mask.sum())))
        assert mask.sum() == end - start
    assert covered == list(range(num_frames))  # every frame in exactly one clip, in order


@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=4), k=st.integers(0, 5))
def test_batch_clips_equal_per_video_clips(lengths: list[int], k: int) -> None:
    spec = ClipSpec(3, 2)
    t_max = max(lengths)
    videos = torch.randn(len(lengths), 2, t_max)
    labels = torch.randint(0, 4, (len(lengths), t_max))
    lens = torch.tensor(lengths)
    clips, masks = batch_clip_inputs(videos, lens, spec, k)
    y = batch_clip_labels(labels, lens, spec, k)
    for i, n in enumerate(lengths):
        if k < spec.num_clips(n):
            assert torch.equal(clips[i], clip_input(videos[i, :, :n], spec, k))
            assert torch.equal(masks[i], clip_frame_mask(spec, k, n))
            assert torch.equal(y[i], clip_labels(labels[i, :n], spec, k))
        else:
            assert not masks[i].any() and torch.all(clips[i] == 0) and torch.all(y[i] == -100)


def test_rgb_clip_keeps_spatial_dims() -> None:
    spec = ClipSpec(4, 2)
    video = torch.randn(3, 11, 5, 6)
    clip = clip_input(video, spec, 1)
    assert clip.shape == (3, 4, 5, 6)
    assert torch.equal(clip[:, :2], video[:, 8:11:2])
    assert torch.all(clip[:, 2:] == 0)
