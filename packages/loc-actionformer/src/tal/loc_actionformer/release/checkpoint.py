"""The release's checkpoint layout, registered with tal's checkpoint formats.

The release's ``train.py`` saves ``{"epoch", "state_dict", "scheduler", "optimizer", "state_dict_ema"}``
from an ``nn.DataParallel`` model, so every weight key starts with ``module.``; its ``eval.py``
evaluates ``state_dict_ema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tal.core.engine.checkpoint import strip_module_prefix
from tal.core.registry import ModelWeights

ENTRIES = ("state_dict_ema", "state_dict")


def is_release_checkpoint(ckpt: Mapping[str, Any]) -> bool:
    """A loaded checkpoint with a ``state_dict`` or ``state_dict_ema`` mapping."""
    return any(isinstance(ckpt.get(key), Mapping) for key in ENTRIES)


def release_weights(ckpt: Mapping[str, Any], prefer_ema: bool) -> ModelWeights:
    """``state_dict_ema`` when present and ``prefer_ema`` (what the release evaluates), else ``state_dict``;
    keys without the ``module.`` prefix, loaded strictly."""
    order = ENTRIES if prefer_ema else ENTRIES[::-1]
    key = next(k for k in order if isinstance(ckpt.get(k), Mapping))
    return ModelWeights(strip_module_prefix(ckpt[key]), key, strict=True)
