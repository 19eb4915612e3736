"""The release's checkpoint layout: ``torch.save`` of a bare CTR-GCN / LST state dict (``runs-*.pt``),
keys possibly prefixed by ``module.`` (``nn.DataParallel``). Loaded with ``strict=True`` as the release does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from tal.core.registry import ModelWeights

__all__ = ["MARKER_KEYS", "is_release_checkpoint", "release_weights"]

#: keys every CTR-GCN / LST state dict has
MARKER_KEYS = ("data_bn.running_mean", "l1.gcn1.PA", "l10.tcn1.branches.0.0.weight", "fc.weight")


def _strip(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def is_release_checkpoint(ckpt: Mapping[str, Any]) -> bool:
    """A mapping of tensors holding CTR-GCN's marker keys (with or without ``module.``)."""
    if not ckpt or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return False
    keys = {_strip(str(k)) for k in ckpt}
    return all(k in keys for k in MARKER_KEYS)


def release_weights(ckpt: Mapping[str, Any], prefer_ema: bool) -> ModelWeights:
    """The state dict without ``module.``; strict, as the release loads it."""
    return ModelWeights({_strip(str(k)): v for k, v in ckpt.items()}, "release state dict", strict=True)
