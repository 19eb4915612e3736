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
#: the weights of ActionFormer's regression head: what tells its checkpoints from other methods' that
#: also keep their weights under ``state_dict``
MARKER = "reg_head.offset_head."


def is_release_checkpoint(ckpt: Mapping[str, Any]) -> bool:
    """A loaded checkpoint with a ``state_dict`` or ``state_dict_ema`` mapping holding ActionFormer's weights."""
    for entry in ENTRIES:
        weights = ckpt.get(entry)
        if isinstance(weights, Mapping) and any(str(k).removeprefix("module.").startswith(MARKER) for k in weights):
            return True
    return False


def release_weights(ckpt: Mapping[str, Any], prefer_ema: bool) -> ModelWeights:
    """``state_dict_ema`` when present and ``prefer_ema`` (what the release evaluates), else ``state_dict``;
    keys without the ``module.`` prefix, loaded strictly."""
    order = ENTRIES if prefer_ema else ENTRIES[::-1]
    key = next(k for k in order if isinstance(ckpt.get(k), Mapping))
    return ModelWeights(strip_module_prefix(ckpt[key]), key, strict=True)
