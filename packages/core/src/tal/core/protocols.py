"""Runtime-checkable protocols every component implements.

A training/eval *batch* is a ``dict`` produced by ``Dataset.collate``; it always holds
``"video_ids": list[str]`` and, when annotated, ``"targets": list[...]`` (one entry per video:
:class:`~tal.core.types.Segments` for localization, ``(T,)`` int64 frame labels for segmentation,
an ``int`` for recognition).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Backbone(Protocol):
    """Maps features ``(B, C_in, T)`` (+ mask ``(B, 1, T)`` bool) to features ``(B, C_out, T')``
    or a list of pyramid levels. Exposes ``out_channels``."""

    out_channels: int

    def __call__(self, x: torch.Tensor, mask: torch.Tensor) -> Any: ...


@runtime_checkable
class Refiner(Protocol):
    """Refines a backbone's frame predictions.

    ``__call__(features (B, C, T), logits (B, K, T), mask (B, 1, T))`` returns refined logits ``(B, K, T)``.
    """

    def __call__(self, features: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Model(Protocol):
    """A trainable method.

    In training mode ``forward(batch)`` returns a dict of scalar losses with the total under ``"loss"``;
    in eval mode it returns one prediction per video of the batch (same order as ``batch["video_ids"]``).
    """

    training: bool

    def __call__(self, batch: Mapping[str, Any]) -> Any: ...

    def parameters(self, recurse: bool = True) -> Any: ...


@runtime_checkable
class Dataset(Protocol):
    """A map-style dataset of videos with its own ``collate``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...

    def collate(self, items: Sequence[Any]) -> dict[str, Any]: ...


@runtime_checkable
class Metric(Protocol):
    """Accumulates predictions and computes scores; mergeable across processes."""

    def reset(self) -> None: ...

    def update(self, predictions: Sequence[Any], targets: Sequence[Any], video_ids: Sequence[str]) -> None: ...

    def compute(self) -> dict[str, Any]: ...

    def merge(self, other: Any) -> None: ...
