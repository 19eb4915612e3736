"""The releases' checkpoint layouts.

* TST (baiyang4/TST-action-segmentation): ``split_K_best.pth`` / ``best.pth`` is
  ``torch.save(BackboneWithTST.state_dict())``: ``adapter.backbone.<DiffAct keys>`` (schedule buffers
  included) and ``refiner.<TSTRefiner keys>``; its own code loads it with ``strict=False``.
* DiffAct (Finspire13/DiffAct): ``release.model`` is ``torch.save(ASDiffusionModel.state_dict())``, no prefix.
* MS-TCN / MS-TCN++: ``epoch-N.model`` is the bare state dict of ``MultiStageModel`` / ``MS_TCN2``.

The last two hold a backbone only: a model built by tal names it ``adapter.backbone.*``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tal.core.engine.checkpoint import describe_mismatch, find_weights, load_checkpoint
from tal.core.errors import DataFormatError
from tal.core.registry import ModelWeights, Registry

BACKBONE_PREFIX = "adapter.backbone."
REFINER_PREFIX = "refiner."
DIFFACT_MARKERS = ("betas", "encoder.conv_in.weight", "decoder.time_in.0.weight")
MSTCN_MARKERS = ("stage1.conv_1x1.weight", "PG.conv_1x1_in.weight")


def _tensors_only(ckpt: Mapping[str, Any]) -> bool:
    return bool(ckpt) and all(isinstance(v, torch.Tensor) for v in ckpt.values())


def is_tst_release(ckpt: Mapping[str, Any]) -> bool:
    """A bare state dict with both ``adapter.backbone.*`` and ``refiner.*`` keys."""
    return (
        _tensors_only(ckpt)
        and any(k.startswith(BACKBONE_PREFIX) for k in ckpt)
        and any(k.startswith(REFINER_PREFIX) for k in ckpt)
    )


def tst_release_weights(ckpt: Mapping[str, Any], prefer_ema: bool) -> ModelWeights:
    """The state dict as is, loaded with ``strict=False`` like the release (every key is reported if unused)."""
    return ModelWeights(dict(ckpt), "TST release state dict", strict=False)


def is_backbone_release(ckpt: Mapping[str, Any]) -> bool:
    """A bare DiffAct ``release.model`` or MS-TCN / MS-TCN++ ``.model`` state dict."""
    return _tensors_only(ckpt) and (all(k in ckpt for k in DIFFACT_MARKERS) or any(k in ckpt for k in MSTCN_MARKERS))


def backbone_release_weights(ckpt: Mapping[str, Any], prefer_ema: bool) -> ModelWeights:
    """The backbone's keys under ``adapter.backbone.`` (the ``seg-backbone`` model's names), strict."""
    return ModelWeights({BACKBONE_PREFIX + k: v for k, v in ckpt.items()}, "backbone release state dict")


def register(registry: Registry) -> None:
    registry.add_checkpoint_format(
        "tst-release",
        is_tst_release,
        tst_release_weights,
        "TST release split_K_best.pth: BackboneWithTST state dict (adapter.backbone.*, refiner.*), strict=False",
    )
    registry.add_checkpoint_format(
        "seg-backbone-release",
        is_backbone_release,
        backbone_release_weights,
        "DiffAct release.model / MS-TCN(++) .model: a bare backbone state dict",
    )


def backbone_state(path: str | Path, registry: Registry | None = None) -> dict[str, torch.Tensor]:
    """The backbone weights in ``path``, keys relative to the backbone (``encoder.*``, ``stage1.*``...).

    ``path`` may be a tal checkpoint of a ``seg-backbone`` or ``backbone-tst`` run, a TST release
    checkpoint or a backbone's own release file.
    """
    ckpt = load_checkpoint(path)
    if is_backbone_release(ckpt):
        return dict(ckpt)
    weights, layout = find_weights(ckpt, registry, prefer_ema=True, source=path)
    state = {k[len(BACKBONE_PREFIX) :]: v for k, v in weights.state_dict.items() if k.startswith(BACKBONE_PREFIX)}
    if not state:
        keys = ", ".join(sorted(weights.state_dict)[:5])
        raise DataFormatError(
            path, f"no backbone weights ({BACKBONE_PREFIX}*) in this {layout} checkpoint (keys: {keys}, ...)"
        )
    return state


def load_backbone_weights(backbone: torch.nn.Module, path: str | Path, registry: Registry | None = None) -> None:
    """Load :func:`backbone_state` into ``backbone`` strictly, with one clear message if it does not fit."""

    state = backbone_state(path, registry)
    problem = describe_mismatch(backbone, state, strict=True)
    if problem is not None:
        raise DataFormatError(path, f"backbone weights do not fit {type(backbone).__name__}: {problem}")
    backbone.load_state_dict(state)
