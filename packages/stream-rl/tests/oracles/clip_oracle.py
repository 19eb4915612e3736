"""The release's stream sampler and the per-frame labelling rule, frame by frame."""

from __future__ import annotations


def sampled_frames(num_frames: int, clip_len: int, sample_rate: int) -> list[list[int]]:
    """Frame indices the model sees in each clip (``VideoStreamSampler``, uniform mode)."""
    window = clip_len * sample_rate
    clips = []
    k = 0
    while k * window < num_frames:
        start = k * window
        end = min(start + clip_len * sample_rate, num_frames)
        clips.append(list(range(start, end, sample_rate)))
        k += 1
    return clips


def labelling_token(frame: int, clip_len: int, sample_rate: int, token_stride: int) -> tuple[int, int]:
    """(clip, token) whose prediction frame ``frame`` receives."""
    window = clip_len * sample_rate
    clip = frame // window
    return clip, (frame - clip * window) // token_stride
