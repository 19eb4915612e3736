"""StreamingSegmenter: pieces of any size, offline equality, labelling rule, flush/reset, pause/resume."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_model
from hypothesis import given
from hypothesis import strategies as st
from oracles.clip_oracle import labelling_token

from tal.stream_rl import StreamingSegmenter, segment_offline
from tal.stream_rl.clips import clip_frame_mask, clip_input

MODEL = tiny_model().eval()  # clips of 8 sampled frames every 2: W = 16 frames


def push_in_pieces(
    stream: StreamingSegmenter, video: torch.Tensor, sizes: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    labels, probs, pos, expected_start = [], [], 0, stream.frames_emitted
    for n in sizes:
        out = stream.push(video[:, pos : pos + n])
        assert out.start == expected_start
        assert len(out) % MODEL.clip_spec.window == 0  # only whole clips before the flush
        expected_start += len(out)
        labels.append(out.labels)
        probs.append(out.probs)
        pos += n
    rest = stream.flush()
    assert rest.start == expected_start
    labels.append(rest.labels)
    probs.append(rest.probs)
    return torch.cat(labels), torch.cat(probs)


def split_sizes(total: int, cuts: list[int]) -> list[int]:
    points = sorted({c % (total + 1) for c in cuts} | {0, total})
    return [b - a for a, b in itertools.pairwise(points) if b > a]


@given(total=st.integers(1, 90), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_any_pieces_equal_clip_by_clip_equal_offline(total: int, cuts: list[int]) -> None:
    video = torch.randn(6, total, generator=torch.Generator().manual_seed(total))
    offline = segment_offline(MODEL, video)
    w = MODEL.clip_spec.window
    clipwise = push_in_pieces(StreamingSegmenter(MODEL), video, [w] * (-(-total // w)))
    pieces = push_in_pieces(StreamingSegmenter(MODEL), video, split_sizes(total, cuts))
    assert offline.labels.shape == (total,) and offline.probs.shape == (total, 5)
    for labels, probs in (clipwise, pieces):
        assert torch.equal(labels, offline.labels)
        assert torch.equal(probs, offline.probs)


def test_offline_equals_hand_run_of_the_clips() -> None:
    """The offline run is the clips run one after the other with the state carried (frame-level rule)."""
    video = torch.randn(6, 37)
    spec = MODEL.clip_spec
    state, probs = None, []
    for k in range(spec.num_clips(37)):
        mask = clip_frame_mask(spec, k, 37)
        p, state = MODEL.predict_clip(clip_input(video, spec, k)[None], mask[None], state)
        probs.append(p[: int(mask.sum())])
    assert torch.equal(torch.cat(probs), segment_offline(MODEL, video).probs)


def test_every_frame_gets_the_label_of_its_token() -> None:
    """sample_rate 2, feature input: token = one sampled frame; frames 2i and 2i+1 share token i's label."""
    video = torch.randn(6, 45)
    out = segment_offline(MODEL, video)
    spec = MODEL.clip_spec
    token_probs = {}
    state = None
    for k in range(spec.num_clips(45)):
        res = MODEL.forward_clip(clip_input(video, spec, k)[None], clip_frame_mask(spec, k, 45)[None], state)
        state = [s.detach() for s in res.state]
        token_probs[k] = torch.softmax(res.token_scores[-1, 0], dim=0).T  # (N, K)
    for f in range(45):
        k, j = labelling_token(f, spec.clip_len, spec.sample_rate, MODEL.token_stride)
        assert torch.allclose(out.probs[f], token_probs[k][j], atol=1e-6)
    # a frame that is not sampled never influences any label: change frame 1 (odd), nothing moves
    changed = video.clone()
    changed[:, 1] += 5.0
    assert torch.equal(segment_offline(MODEL, changed).labels, out.labels)
    changed[:, 2] += 5.0  # a sampled frame does
    assert not torch.equal(segment_offline(MODEL, changed).probs, out.probs)


def test_push_returns_nothing_until_a_clip_completes() -> None:
    stream = StreamingSegmenter(MODEL)
    out = stream.push(torch.randn(6, 15))
    assert out.start == 0 and len(out) == 0 and out.probs.shape == (0, 5) and out.labels.dtype == torch.int64
    out = stream.push(torch.randn(6, 1))
    assert out.start == 0 and len(out) == 16 and len(out.clip_seconds) == 1
    assert stream.frames_seen == 16 and stream.frames_emitted == 16


def test_memory_is_reset_per_video() -> None:
    a, b = torch.randn(6, 40), torch.randn(6, 40)
    stream = StreamingSegmenter(MODEL)
    push_in_pieces(stream, a, [40])  # flush ends video a
    second = push_in_pieces(stream, b, [7, 33])
    assert torch.equal(second[1], segment_offline(MODEL, b).probs)
    stream.push(a[:, :20])
    stream.reset()  # a dropped mid-clip
    third = push_in_pieces(stream, b, [40])
    assert torch.equal(third[1], segment_offline(MODEL, b).probs)
    # and the memory does matter within a video: the second clip's output depends on the first clip
    other_first = torch.cat([torch.randn(6, 16), b[:, 16:32]], dim=1)
    assert not torch.equal(segment_offline(MODEL, other_first).probs[16:], segment_offline(MODEL, b[:, :32]).probs[16:])


def test_flush_of_an_empty_stream_and_flush_twice() -> None:
    stream = StreamingSegmenter(MODEL)
    assert len(stream.flush()) == 0
    stream.push(torch.randn(6, 16))
    rest = stream.flush()
    assert rest.start == 16 and len(rest) == 0
    assert len(stream.flush()) == 0 and stream.frames_seen == 0


@pytest.mark.parametrize("pause_at", [0, 5, 16, 23, 32])
def test_pause_resume_in_process(pause_at: int) -> None:
    video = torch.randn(6, 50)
    expected = push_in_pieces(StreamingSegmenter(MODEL), video, [50])
    first = StreamingSegmenter(MODEL)
    before = first.push(video[:, :pause_at])
    state = first.state_dict()
    second = StreamingSegmenter(MODEL)
    second.load_state_dict(state)
    after = push_in_pieces(second, video[:, pause_at:], [50 - pause_at])
    labels = torch.cat([before.labels, after[0]])
    probs = torch.cat([before.probs, after[1]])
    assert torch.equal(labels, expected[0]) and torch.equal(probs, expected[1])


RESUME_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from conftest import tiny_model
from tal.stream_rl import StreamingSegmenter
torch.manual_seed(0)
model = tiny_model().eval()
model.load_state_dict(torch.load({weights!r}, weights_only=True))
stream = StreamingSegmenter(model)
stream.load_state_dict(torch.load({state!r}, weights_only=True))
video = torch.load({video!r}, weights_only=True)
outs = [stream.push(video[:, 21:40]), stream.push(video[:, 40:]), stream.flush()]
torch.save({{"labels": torch.cat([o.labels for o in outs]), "probs": torch.cat([o.probs for o in outs]),
            "start": outs[0].start}}, {out!r})
"""


def test_pause_resume_across_processes(tmp_path: Path) -> None:
    video = torch.randn(6, 70)
    expected = push_in_pieces(StreamingSegmenter(MODEL), video, [70])
    stream = StreamingSegmenter(MODEL)
    head = stream.push(video[:, :21])
    torch.save(stream.state_dict(), tmp_path / "state.pt")
    torch.save(MODEL.state_dict(), tmp_path / "weights.pt")
    torch.save(video, tmp_path / "video.pt")
    script = RESUME_SCRIPT.format(
        tests=str(Path(__file__).parent),
        weights=str(tmp_path / "weights.pt"),
        state=str(tmp_path / "state.pt"),
        video=str(tmp_path / "video.pt"),
        out=str(tmp_path / "out.pt"),
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    resumed = torch.load(tmp_path / "out.pt", weights_only=True)
    assert resumed["start"] == len(head) == 16
    assert torch.equal(torch.cat([head.labels, resumed["labels"]]), expected[0])
    assert torch.equal(torch.cat([head.probs, resumed["probs"]]), expected[1])


def test_state_of_a_different_model_is_rejected() -> None:
    stream = StreamingSegmenter(MODEL)
    stream.push(torch.randn(6, 5))
    other = StreamingSegmenter(tiny_model(clip_len=4).eval())
    with pytest.raises(ValueError, match="clip_len"):
        other.load_state_dict(stream.state_dict())
    with pytest.raises(ValueError, match="format"):
        other.load_state_dict({"labels": 1})


def test_bad_input_is_named() -> None:
    stream = StreamingSegmenter(MODEL)
    with pytest.raises(ValueError, match="6 channels per frame"):
        stream.push(torch.randn(7, 10))
    with pytest.raises(ValueError, match="channels first"):
        stream.push(torch.randn(10))
    with pytest.raises(TypeError, match="floating point"):
        stream.push(torch.ones(6, 3, dtype=torch.int64))
    stream.push(torch.randn(6, 3))
    with pytest.raises(ValueError, match="do not continue"):
        stream.push(torch.randn(6, 3, 2))


def test_100k_frames_constant_memory_and_work_per_clip() -> None:
    """A 100,000-frame video: the stream holds one clip of frames and a fixed state, one model call per clip."""
    model = tiny_model(
        input_dim=4,
        num_classes=3,
        head={"num_f_maps": 8, "encoder_layers": 1, "decoder_layers": 1, "num_decoders": 0, "state_len": 4},
        clip_len=32,
        sample_rate=4,
    ).eval()
    stream = StreamingSegmenter(model)
    calls = []
    original = model.predict_clip

    def counting(clip, mask, state):
        calls.append((tuple(clip.shape), None if state is None else [tuple(s.shape) for s in state]))
        return original(clip, mask, state)

    model.predict_clip = counting  # type: ignore[method-assign]
    sizes_at: dict[int, int] = {}
    emitted = 0
    piece = 997  # not a multiple of the 128-frame window
    for pos in range(0, 100_000, piece):
        out = stream.push(torch.randn(4, min(piece, 100_000 - pos)))
        assert out.start == emitted
        emitted += len(out)
        state = stream.state_dict()
        n_bytes = sum(
            t.numel() * t.element_size() for t in [state["buffer"], *(state["memory"] or [])] if t is not None
        )
        sizes_at[pos + piece] = n_bytes
    emitted += len(stream.flush())
    assert emitted == 100_000
    assert len(calls) == -(-100_000 // 128)  # one model call per clip
    assert all(c == calls[-1] for c in calls[1:])  # the same work for every clip (shapes constant)
    assert max(sizes_at.values()) <= 4 * 32 * 4 + 4 * 8 * 4  # at most one clip of sampled frames + the state


def test_rgb_frames_with_wrong_channels_are_named() -> None:
    rgb = tiny_model(backbone={"name": "stream-conv3d", "widths": [4, 8]}, head={"num_f_maps": 8}).eval()
    with pytest.raises(ValueError, match="3 channels per frame"):
        StreamingSegmenter(rgb).push(torch.randn(4, 5, 8, 8))
