"""Online segmentation: frames go in piece by piece, labels come out clip by clip.

:class:`StreamingSegmenter` keeps only the current clip's sampled frames and the head's recurrent
state, so memory and time per clip do not grow with the video. Its outputs are defined by the clips
(:mod:`tal.stream_rl.clips`), not by how the frames were pushed:

- pushing a video in pieces of any sizes emits exactly the labels (and probabilities) of pushing it
  clip by clip, which are exactly those of :func:`segment_offline` (the same clips run in the same order);
- a push emits the labels of every frame whose clip is complete after it (``n`` is a multiple of the
  clip's ``W`` frames; 0 while a clip fills); :meth:`StreamingSegmenter.flush` ends the video and emits
  the last, partial clip's frames (zero-padded like the release's sampler pads it);
- :meth:`StreamingSegmenter.state_dict` / :meth:`~StreamingSegmenter.load_state_dict` pause and resume
  a stream, also in another process (plain tensors and numbers: ``torch.load(weights_only=True)`` reads it).

Frame ``f`` of clip ``k`` is labelled by the head's token covering it (see :mod:`tal.stream_rl.clips`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from tal.stream_rl.clips import ClipSpec
from tal.stream_rl.modeling.brt_head import HeadState

logger = logging.getLogger(__name__)

STATE_FORMAT = "tal.stream_rl.StreamingSegmenter"
STATE_VERSION = 1


@dataclass
class StreamOutput:
    """Labels of consecutive frames ``start, ..., start + n - 1`` of the current video.

    Attributes:
        start: index of the first labelled frame in the video.
        labels: ``(n,)`` int64 class per frame.
        probs: ``(n, K)`` float32 class probabilities (softmax of the head's last stage).
        clip_seconds: wall time of each clip computed for this output (one entry per clip).
    """

    start: int
    labels: torch.Tensor
    probs: torch.Tensor
    clip_seconds: list[float] = field(default_factory=list)

    @property
    def end(self) -> int:
        """One past the last labelled frame."""
        return self.start + int(self.labels.shape[0])

    def __len__(self) -> int:
        return int(self.labels.shape[0])


class StreamingSegmenter:
    """Run an :class:`~tal.stream_rl.modeling.SVTASRL` model on a video that arrives piece by piece.

    Args:
        model: the model, in eval mode (``model.eval()``; dropout would make outputs random).
        device: where to run (default: the model's device).

    Frames are tensors with channels first and time second: features ``(C, L)``, RGB ``(3, L, H, W)``;
    any ``L >= 1``. Example::

        stream = StreamingSegmenter(model.eval())
        for piece in pieces:                     # (C, L) each
            out = stream.push(piece)             # out.start, out.labels (n,), out.probs (n, K)
        rest = stream.flush()                    # the last, partial clip
    """

    def __init__(self, model: Any, device: torch.device | str | None = None) -> None:
        self.model = model
        self.spec: ClipSpec = model.clip_spec
        self.num_classes = int(model.num_classes)
        self.device = torch.device(device) if device is not None else model.device
        if getattr(model, "training", False):
            logger.warning(
                "StreamingSegmenter: the model is in training mode; call model.eval() for deterministic labels"
            )
        self._frame_shape: tuple[int, ...] | None = None  # per-frame shape (C, ...) fixed by the first push
        self._buffer: torch.Tensor | None = None  # (C, clip_len, ...) sampled frames of the current clip
        self._filled = 0  # frames of the current clip received so far (0 <= filled < W)
        self._emitted = 0  # frames of the video labelled so far (a multiple of W until flush)
        self._state: HeadState | None = None

    # -- properties ---------------------------------------------------------------------------
    @property
    def frames_seen(self) -> int:
        """Frames of the current video pushed so far."""
        return self._emitted + self._filled

    @property
    def frames_emitted(self) -> int:
        """Frames of the current video labelled so far."""
        return self._emitted

    # -- streaming ----------------------------------------------------------------------------
    def _check(self, frames: torch.Tensor) -> torch.Tensor:
        if not isinstance(frames, torch.Tensor):
            raise TypeError(f"push() takes a tensor (C, L[, H, W]), got {type(frames).__name__}")
        if frames.dim() < 2:
            raise ValueError(
                f"push() takes frames with channels first and time second (C, L), got shape {tuple(frames.shape)}"
            )
        per_frame = (frames.shape[0], *frames.shape[2:])
        if self._frame_shape is None:
            backbone = getattr(self.model, "backbone", None)
            expected = getattr(backbone, "input_dim", None) or getattr(backbone, "in_channels", None)
            if expected is not None and frames.shape[0] != expected:
                raise ValueError(
                    f"push(): the model takes {expected} channels per frame, got frames of shape {tuple(frames.shape)}"
                )
        elif per_frame != self._frame_shape:
            raise ValueError(
                f"push(): frames of shape {tuple(frames.shape)} do not continue the stream's frames (C, L, ...) = "
                f"{(self._frame_shape[0], 'L', *self._frame_shape[1:])}"
            )
        if not frames.is_floating_point():
            raise TypeError(f"push(): frames must be floating point, got {frames.dtype}")
        return frames

    def _empty(self, start: int) -> StreamOutput:
        return StreamOutput(start, torch.zeros(0, dtype=torch.int64), torch.zeros(0, self.num_classes))

    def _new_buffer(self) -> torch.Tensor:
        assert self._frame_shape is not None
        c, rest = self._frame_shape[0], self._frame_shape[1:]
        return torch.zeros((c, self.spec.clip_len, *rest), dtype=self.model.dtype, device=self.device)

    def _run_clip(self, valid: int) -> tuple[torch.Tensor, float]:
        """Run the buffered clip with ``valid`` frames; returns ``(probs (valid, K), seconds)``."""
        assert self._buffer is not None
        mask = (torch.arange(self.spec.window, device=self.device) < valid)[None]
        t0 = time.perf_counter()
        probs, self._state = self.model.predict_clip(self._buffer[None], mask, self._state)
        seconds = time.perf_counter() - t0
        return probs[:valid].cpu(), seconds

    def push(self, frames: torch.Tensor) -> StreamOutput:
        """Add the next ``L`` frames of the video; returns the labels of the clips they complete."""
        frames = self._check(frames)
        if self._frame_shape is None:
            self._frame_shape = (frames.shape[0], *frames.shape[2:])
        sr, window = self.spec.sample_rate, self.spec.window
        start = self._emitted
        probs_out: list[torch.Tensor] = []
        seconds: list[float] = []
        pos, total = 0, frames.shape[1]
        while pos < total:
            if self._buffer is None:
                self._buffer = self._new_buffer()
            take = min(window - self._filled, total - pos)
            first = (-self._filled) % sr  # first frame of this piece that is sampled
            if first < take:
                sampled = frames[:, pos + first : pos + take : sr]
                slot = (self._filled + first) // sr
                self._buffer[:, slot : slot + sampled.shape[1]] = sampled.to(self.device, self._buffer.dtype)
            self._filled += take
            pos += take
            if self._filled == window:
                probs, sec = self._run_clip(window)
                probs_out.append(probs)
                seconds.append(sec)
                self._emitted += window
                self._filled = 0
                self._buffer.zero_()
        if not probs_out:
            return self._empty(start)
        probs_all = torch.cat(probs_out)
        return StreamOutput(start, probs_all.argmax(dim=1), probs_all, seconds)

    def flush(self) -> StreamOutput:
        """End of the video: label the frames of the last, partial clip, then start over.

        The next :meth:`push` begins a new video (state cleared, frame counter at 0), as after :meth:`reset`.
        """
        start = self._emitted
        if self._filled == 0 or self._buffer is None:
            self.reset()
            return self._empty(start)
        probs, sec = self._run_clip(self._filled)
        self.reset()
        return StreamOutput(start, probs.argmax(dim=1), probs, [sec])

    def reset(self) -> None:
        """Forget the current video (buffered frames are dropped unlabelled, the head's memory cleared)."""
        self._buffer = None
        self._filled = 0
        self._emitted = 0
        self._state = None
        self._frame_shape = None

    # -- pause / resume -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this stream exactly: tensors (on the CPU) and plain numbers."""
        filled_slots = -(-self._filled // self.spec.sample_rate)
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "clip_len": self.spec.clip_len,
            "sample_rate": self.spec.sample_rate,
            "num_classes": self.num_classes,
            "frame_shape": None if self._frame_shape is None else list(self._frame_shape),
            "filled": self._filled,
            "emitted": self._emitted,
            "buffer": None if self._buffer is None else self._buffer[:, :filled_slots].detach().cpu().clone(),
            "memory": None if self._state is None else [s.detach().cpu().clone() for s in self._state],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the stream saved by :meth:`state_dict` (same model settings required)."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("load_state_dict(): not a StreamingSegmenter state (missing format tag)")
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"load_state_dict(): state version {state.get('version')}, this code reads {STATE_VERSION}"
            )
        for key, mine in (
            ("clip_len", self.spec.clip_len),
            ("sample_rate", self.spec.sample_rate),
            ("num_classes", self.num_classes),
        ):
            if state.get(key) != mine:
                raise ValueError(f"load_state_dict(): the state has {key}={state.get(key)}, this model {key}={mine}")
        self.reset()
        shape = state.get("frame_shape")
        self._frame_shape = None if shape is None else tuple(int(x) for x in shape)
        self._filled = int(state["filled"])
        self._emitted = int(state["emitted"])
        buffer = state.get("buffer")
        if buffer is not None:
            assert self._frame_shape is not None
            self._buffer = self._new_buffer()
            self._buffer[:, : buffer.shape[1]] = buffer.to(self.device, self._buffer.dtype)
        memory = state.get("memory")
        self._state = None if memory is None else [m.to(self.device) for m in memory]


def segment_offline(model: Any, video: torch.Tensor) -> StreamOutput:
    """Offline run over a whole video ``(C, T, ...)`` with the same clip boundaries as streaming."""
    labels, probs = model.segment(video)
    return StreamOutput(0, labels.cpu(), probs.cpu())
