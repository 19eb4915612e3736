"""Loading the official release's checkpoints (``state_dict`` / ``state_dict_ema`` with ``module.`` prefixes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

PREFIX = "module."


def strip_prefix(state_dict: Mapping[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    """Remove ``prefix`` (``nn.DataParallel``'s ``module.``) from every key that has it."""
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def official_state_dict(checkpoint: Mapping[str, Any], prefer_ema: bool = True) -> tuple[dict[str, Any], str]:
    """Pick the weights out of a release checkpoint dict.

    Uses ``state_dict_ema`` when present and ``prefer_ema`` (the release evaluates with it), else
    ``state_dict``; a mapping of tensors without either key is taken as a bare state dict.

    Returns:
        ``(state_dict without "module." prefixes, name of the entry used)``.
    """
    order = ("state_dict_ema", "state_dict") if prefer_ema else ("state_dict", "state_dict_ema")
    for key in order:
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            return strip_prefix(checkpoint[key]), key
    if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return strip_prefix(checkpoint), "<bare state dict>"
    raise KeyError(f"checkpoint has neither 'state_dict_ema' nor 'state_dict' (keys: {sorted(checkpoint)[:10]})")


def load_official_checkpoint(
    model: nn.Module,
    checkpoint: Mapping[str, Any] | str | Path,
    prefer_ema: bool = True,
    strict: bool = True,
) -> str:
    """Load a release checkpoint (dict or file path) into ``model``; returns the entry used.

    Files are read with ``torch.load(..., weights_only=True, map_location="cpu")``. With ``strict``,
    missing or unexpected keys raise (``nn.Module.load_state_dict``), as do shape mismatches.
    """
    if not isinstance(checkpoint, Mapping):
        checkpoint = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, Mapping):
            raise TypeError(f"checkpoint file holds a {type(checkpoint).__name__}, not a dict")
    state, used = official_state_dict(checkpoint, prefer_ema=prefer_ema)
    model.load_state_dict(state, strict=strict)
    return used
