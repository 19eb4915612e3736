"""Training logs: a CSV file (always), TensorBoard (when enabled and installed) and a progress bar."""

from __future__ import annotations

import csv
import io
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Scalar leaves of a (nested) metrics dict as ``{"a/b": float}``.

    Numbers, bools, NumPy scalars and one-element tensors/arrays are kept; longer arrays, strings and
    other values are skipped.
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, f"{name}/"))
            continue
        scalar = _as_scalar(value)
        if scalar is not None:
            out[name] = scalar
    return out


def _as_scalar(value: Any) -> float | None:
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, np.ndarray) and value.size == 1:
        return float(value.item())
    return None


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    return "" if value is None else str(value)


class CSVLogger:
    """One row per epoch in a CSV file; new columns extend the header.

    The file is rewritten atomically after every row. With ``resume_epoch`` the rows of an existing
    file with ``epoch <= resume_epoch`` are kept (later rows belong to a run that crashed before its
    next checkpoint); otherwise an existing file is replaced.
    """

    def __init__(self, path: str | Path, resume_epoch: int | None = None) -> None:
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []
        if resume_epoch is not None and self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                self.rows = [r for r in reader if r.get("epoch", "") != "" and int(r["epoch"]) <= resume_epoch]

    def log(self, row: Mapping[str, Any]) -> None:
        """Append ``row`` (values formatted losslessly) and rewrite the file."""
        for key in row:
            if key not in self.columns:
                self.columns.append(key)
        self.rows.append({k: _format(v) for k, v in row.items()})
        self._write()

    def _write(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        os.replace(tmp, self.path)


class TensorBoardLogger:
    """Scalars to TensorBoard event files in ``log_dir``.

    ``purge_step`` discards events at or after that step left by a run that is being resumed.
    """

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def log(self, values: Mapping[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def make_tensorboard(log_dir: str | Path, enabled: bool, purge_step: int | None = None) -> TensorBoardLogger | None:
    """A :class:`TensorBoardLogger` if ``enabled`` and tensorboard is installed (else a warning and ``None``)."""
    if not enabled:
        return None
    try:
        return TensorBoardLogger(log_dir, purge_step)
    except ImportError:
        logger.warning("train.tensorboard is set but tensorboard is not installed; skipping")
        return None


def progress_enabled(requested: bool, force: bool | None = None) -> bool:
    """Show a bar if ``requested`` and stdout is a terminal, or whenever ``force`` is true.

    ``force=False`` hides it; ``None`` decides from ``requested`` and the terminal.
    """
    if force is not None:
        return force
    return requested and sys.stdout.isatty()


class ProgressBar:
    """A rich progress bar on stderr (a no-op when disabled). Use as a context manager."""

    def __init__(self, total: int, description: str, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(file=sys.stderr, force_terminal=True),
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total, info="")

    def __enter__(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def update(self, advance: int = 1, **info: Any) -> None:
        """Advance the bar and show ``key=value`` pairs (floats with 4 significant digits)."""
        if self._progress is None:
            return
        text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        self._progress.update(self._task, advance=advance, info=text)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
