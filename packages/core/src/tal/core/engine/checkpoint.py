"""Atomic checkpoint files and safe loading.

:func:`save_checkpoint` writes to a temporary file in the destination directory, flushes and
fsyncs it, renames it over the destination with :func:`os.replace` and fsyncs the directory: a
crash at any point leaves either the previous file or the new one, never a truncated file.
:func:`load_checkpoint` uses ``torch.load(..., weights_only=True)``, so checkpoints hold only
tensors and plain Python values.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tal.core.errors import DataFormatError
from tal.core.formats.atomic import atomic_open

LAST = "last.pt"
BEST = "best.pt"
FORMAT_VERSION = 1


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """Atomically write ``state`` with ``torch.save`` to ``path`` (parent directories are created)."""
    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save(dict(state), f)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a missing or unreadable file is a :class:`DataFormatError`."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "checkpoint file not found")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise DataFormatError(path, f"not a readable checkpoint: {exc}") from None
    if not isinstance(data, dict):
        raise DataFormatError(path, f"a checkpoint must hold a dict, got {type(data).__name__}")
    return data


def to_plain(value: Any) -> Any:
    """Convert NumPy scalars/arrays (recursively inside dicts, lists and tuples) to Python numbers and
    tensors so the value can be saved in a ``weights_only`` checkpoint."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _strip_prefix(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return dict(state)


def model_state_from_checkpoint(ckpt: Mapping[str, Any], prefer_ema: bool = True) -> tuple[dict[str, Any], str]:
    """The model weights in a checkpoint and where they came from (``"ema"`` or ``"model"``).

    Understands tal checkpoints (``model``/``ema``), ActionFormer-style ones
    (``state_dict``/``state_dict_ema``, ``module.`` prefixes) and bare state dicts.
    """
    ema = ckpt.get("ema")
    if prefer_ema and isinstance(ema, Mapping) and isinstance(ema.get("module"), Mapping):
        return dict(ema["module"]), "ema"
    if prefer_ema and isinstance(ckpt.get("state_dict_ema"), Mapping):
        return _strip_prefix(ckpt["state_dict_ema"], "module."), "ema"
    if isinstance(ckpt.get("model"), Mapping):
        return dict(ckpt["model"]), "model"
    if isinstance(ckpt.get("state_dict"), Mapping):
        return _strip_prefix(ckpt["state_dict"], "module."), "model"
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return _strip_prefix(ckpt, "module."), "model"
    raise ValueError("no model weights found (expected a 'model', 'ema' or 'state_dict' entry)")


def load_model_weights(model: nn.Module, path: str | Path, prefer_ema: bool = True) -> str:
    """Load a checkpoint's weights into ``model`` (EMA weights when present and ``prefer_ema``).

    Returns ``"ema"`` or ``"model"``. Raises :class:`DataFormatError` if the file holds no weights or
    they do not fit the model.
    """
    ckpt = load_checkpoint(path)
    try:
        state, source = model_state_from_checkpoint(ckpt, prefer_ema)
    except ValueError as exc:
        raise DataFormatError(path, str(exc)) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DataFormatError(path, f"weights do not fit {type(model).__name__}: {exc}") from None
    return source
