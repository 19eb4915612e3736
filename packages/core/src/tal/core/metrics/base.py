"""Shared base of the mergeable metrics.

State is a dict ``name -> list`` with one entry per video (or sample) in every list; ``merge``
concatenates the lists, ``sync`` gathers them from every torch.distributed rank (in rank order).
``compute`` of a subclass reads :meth:`MergeableMetric.records`, which drops repeated video ids
(``DistributedSampler`` pads the last batch by repeating samples): the first record of an id wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch


def to_numpy(x: Any, dtype: Any = None) -> np.ndarray:
    """A tensor / array / sequence as a NumPy array (tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


class MergeableMetric:
    """Base class: list-valued state, ``merge`` = concatenate, ``sync`` = all-gather across ranks.

    Subclasses list their state names in ``state_names`` (``"video_ids"`` is always added), append
    records with :meth:`_append` and return their settings from :meth:`settings` so that ``merge``
    refuses metrics configured differently.
    """

    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, deduplicate: bool = True) -> None:
        self.deduplicate = deduplicate
        self._state: dict[str, list[Any]] = {}
        self.reset()

    # -- state --------------------------------------------------------------------------------
    @property
    def _names(self) -> tuple[str, ...]:
        return ("video_ids", *self.state_names)

    def reset(self) -> None:
        """Forget every update."""
        self._state = {name: [] for name in self._names}

    def settings(self) -> dict[str, Any]:
        """The configuration that must agree for two metrics to be merged."""
        return {}

    def _append(self, video_ids: Sequence[str], **columns: Sequence[Any]) -> None:
        n = len(video_ids)
        if set(columns) != set(self.state_names):
            raise TypeError(f"{type(self).__name__}: state is {self.state_names}, got {tuple(columns)}")
        for name, values in columns.items():
            if len(values) != n:
                raise ValueError(f"{type(self).__name__}: {len(values)} {name} for {n} video ids")
        self._state["video_ids"].extend(str(v) for v in video_ids)
        for name, values in columns.items():
            self._state[name].extend(values)

    def __len__(self) -> int:
        """Number of records held (before removing repeated video ids)."""
        return len(self._state["video_ids"])

    def records(self) -> dict[str, list[Any]]:
        """The state with repeated video ids removed (first record wins) if ``deduplicate``."""
        if not self.deduplicate:
            return {name: list(values) for name, values in self._state.items()}
        seen: set[str] = set()
        keep: list[int] = []
        for i, vid in enumerate(self._state["video_ids"]):
            if vid not in seen:
                seen.add(vid)
                keep.append(i)
        return {name: [values[i] for i in keep] for name, values in self._state.items()}

    def state_dict(self) -> dict[str, Any]:
        """Picklable copy of the state (lists of NumPy arrays / Python scalars) and the settings."""
        return {"settings": self.settings(), "state": {k: list(v) for k, v in self._state.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the state by ``state`` (from :meth:`state_dict`)."""
        self._check_settings(state.get("settings", {}))
        self._state = {name: list(state["state"][name]) for name in self._names}

    # -- combining ----------------------------------------------------------------------------
    def _check_settings(self, other: dict[str, Any]) -> None:
        mine = self.settings()
        if other != mine:
            raise ValueError(f"{type(self).__name__}: cannot merge metrics with settings {other} into {mine}")

    def merge(self, other: Any) -> None:
        """Append ``other``'s records after this metric's (same class and settings required)."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        self._check_settings(other.settings())
        for name in self._names:
            self._state[name].extend(other._state[name])

    def sync(self, group: Any = None) -> None:
        """Replace the state by the records of every rank (rank order) when a process group is
        initialised; a no-op otherwise. Every rank must call it (it is a collective); afterwards all
        ranks hold the same state. Call it once per evaluation (a second call would gather twice)."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        world = torch.distributed.get_world_size(group)
        gathered: list[Any] = [None] * world
        torch.distributed.all_gather_object(gathered, self.state_dict(), group=group)
        merged: dict[str, list[Any]] = {name: [] for name in self._names}
        for part in gathered:
            self._check_settings(part["settings"])
            for name in self._names:
                merged[name].extend(part["state"][name])
        self._state = merged
