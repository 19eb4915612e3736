"""Atomic checkpoint files, safe loading, and the checkpoint layouts tal reads.

:func:`save_checkpoint` writes to a temporary file in the destination directory, flushes and
fsyncs it, renames it over the destination with :func:`os.replace` and fsyncs the directory: a
crash at any point leaves either the previous file or the new one, never a truncated file (and the
next save removes the temporary file a killed save left behind). :func:`load_checkpoint` uses
``torch.load(..., weights_only=True)``, so checkpoints hold only tensors and plain Python values.

:func:`load_model_weights` finds the weights through the registered checkpoint formats
(``register_checkpoint_formats``): a method package registers its release's layout; tal's own
layout (``model``/``ema`` entries) and a bare state dict are core's fallbacks.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from tal.core.errors import DataFormatError
from tal.core.formats.atomic import atomic_open, temporary_siblings
from tal.core.registry import CheckpointFormat, ModelWeights, Registry

logger = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
FORMAT_VERSION = 1
#: how many keys a weights-mismatch message lists per group
SHOWN_KEYS = 5


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """Atomically write ``state`` with ``torch.save`` to ``path`` (parent directories are created).

    Temporary files that an interrupted earlier save of the same path left behind are removed first.
    """
    path = Path(path)
    for stale in temporary_siblings(path):
        try:
            stale.unlink()
            logger.info("removed %s, left by an interrupted save", stale)
        except FileNotFoundError:
            pass
    with atomic_open(path, "wb") as f:
        torch.save(dict(state), f)
    return path


def _unreadable_reason(exc: BaseException) -> str:
    """torch's message without its advice to load with ``weights_only=False`` (never safe for a file
    someone handed you)."""
    text = str(exc).strip()
    if "weights_only" in text or "Weights only load failed" in text:
        first = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln or "global" in ln.lower()), "")
        detail = f" ({first})" if first else ""
        return (
            "it holds Python objects other than tensors and plain values, which tal does not unpickle"
            f"{detail}; save only the state dict (torch.save(model.state_dict(), path))"
        )
    return text.splitlines()[0] if text else type(exc).__name__


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a missing or unreadable file is a :class:`DataFormatError`."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "checkpoint file not found")
    if path.stat().st_size == 0:
        raise DataFormatError(path, "not a readable checkpoint: the file is empty (0 bytes); was its save interrupted?")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise DataFormatError(path, f"not a readable checkpoint: {_unreadable_reason(exc)}") from None
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


# -- core's own layouts (registered as fallbacks by tal.core.builtin) ----------------------------
def strip_module_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` without ``nn.DataParallel``/DDP's ``module.`` prefix (when every key has it)."""
    out = dict(state)
    consume_prefix_in_state_dict_if_present(out, "module.")
    return out


def is_tal_checkpoint(ckpt: Mapping[str, Any]) -> bool:
    """A checkpoint written by :class:`~tal.core.engine.Trainer` (``model`` and maybe ``ema`` entries)."""
    return isinstance(ckpt.get("model"), Mapping) or (
        isinstance(ckpt.get("ema"), Mapping) and isinstance(ckpt["ema"].get("module"), Mapping)
    )


def tal_weights(ckpt: Mapping[str, Any], prefer_ema: bool) -> ModelWeights:
    """The EMA weights of a tal checkpoint when present and preferred, else its model weights."""
    ema = ckpt.get("ema")
    if prefer_ema and isinstance(ema, Mapping) and isinstance(ema.get("module"), Mapping):
        return ModelWeights(dict(ema["module"]), "ema")
    if isinstance(ckpt.get("model"), Mapping):
        return ModelWeights(dict(ckpt["model"]), "model")
    return ModelWeights(dict(ema["module"]), "ema")  # type: ignore[index]


def is_bare_state_dict(ckpt: Mapping[str, Any]) -> bool:
    """A mapping of parameter names to tensors (``torch.save(model.state_dict(), path)``)."""
    return bool(ckpt) and all(isinstance(v, torch.Tensor) for v in ckpt.values())


def bare_state_dict_weights(ckpt: Mapping[str, Any], prefer_ema: bool) -> ModelWeights:
    """The state dict itself, without a ``module.`` prefix."""
    return ModelWeights(strip_module_prefix(ckpt), "state dict")


CORE_FORMATS: dict[str, CheckpointFormat] = {
    "tal": CheckpointFormat(is_tal_checkpoint, tal_weights, fallback=True),
    "state-dict": CheckpointFormat(is_bare_state_dict, bare_state_dict_weights, fallback=True),
}


def _formats(registry: Registry | None) -> list[tuple[str, CheckpointFormat]]:
    """``(label, format)`` pairs, labels naming the plugin that registered the format."""
    core = [(f"{name} (core)", fmt) for name, fmt in CORE_FORMATS.items()]
    if registry is None:
        return core
    found = [(f"{c.name} (plugin {c.owner})", c.factory) for c in registry.components("checkpoint_formats")]
    return found or core


def find_weights(
    ckpt: Mapping[str, Any], registry: Registry | None = None, prefer_ema: bool = True, source: object = "<checkpoint>"
) -> tuple[ModelWeights, str]:
    """The model weights in a loaded checkpoint and the name of the layout that claimed it.

    Layouts registered by plugins are asked first; core's fallbacks only when none claims it. Two
    claimants are an error that names both.
    """
    formats = _formats(registry)
    for group in ([f for f in formats if not f[1].fallback], [f for f in formats if f[1].fallback]):
        hits = [(name, fmt) for name, fmt in group if fmt.detect(ckpt)]
        if len(hits) > 1:
            names = ", ".join(name for name, _ in hits)
            raise DataFormatError(source, f"more than one checkpoint layout claims this file: {names}")
        if hits:
            name, fmt = hits[0]
            return fmt.extract(ckpt, prefer_ema), name.split(" (")[0]
    keys = ", ".join(sorted(map(str, ckpt))[:10]) or "none"
    known = ", ".join(name.split(" (")[0] for name, _ in formats)
    raise DataFormatError(source, f"no model weights found: no known checkpoint layout ({known}) has keys {keys}")


def model_state_from_checkpoint(
    ckpt: Mapping[str, Any], prefer_ema: bool = True, registry: Registry | None = None
) -> tuple[dict[str, Any], str]:
    """``(state dict, source)`` of a loaded checkpoint (see :func:`find_weights`)."""
    weights, _ = find_weights(ckpt, registry, prefer_ema)
    return weights.state_dict, weights.source


def _config_fields_with_value(config: Any, value: int, prefix: str = "") -> list[str]:
    """Dotted names of the integer fields of a pydantic ``config`` (recursively) equal to ``value``."""
    out: list[str] = []
    fields = getattr(type(config), "model_fields", None)
    if fields is None:
        return out
    for name in fields:
        v = getattr(config, name, None)
        path = f"{prefix}{name}"
        if isinstance(v, bool):
            continue
        ints = [x for x in v if isinstance(x, int) and not isinstance(x, bool)] if isinstance(v, (list, tuple)) else []
        if (isinstance(v, int) and v == value) or value in ints:
            out.append(path)
        elif getattr(type(v), "model_fields", None) is not None:
            out.extend(_config_fields_with_value(v, value, path + "."))
    return out


def _shown(keys: Sequence[str]) -> str:
    more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def describe_mismatch(
    model: nn.Module, state: Mapping[str, Any], strict: bool = True, config: Any = None, config_name: str = "model"
) -> str | None:
    """One summary of why ``state`` does not fit ``model``, or ``None`` if it fits.

    Counts of missing and unexpected keys and of shape mismatches, the first few of each, and for
    shape mismatches the config fields whose value equals a model dimension the checkpoint
    disagrees with (the likely cause: the checkpoint was trained with another value of that field).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        (k, tuple(own[k].shape), tuple(state[k].shape))
        for k in own
        if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    parts: list[str] = []
    if shapes:
        listed = "; ".join(f"{k}: model {m}, checkpoint {c}" for k, m, c in shapes[:SHOWN_KEYS])
        more = f"; and {len(shapes) - SHOWN_KEYS} more" if len(shapes) > SHOWN_KEYS else ""
        parts.append(f"{len(shapes)} tensors differ in shape ({listed}{more})")
        if config is not None:
            causes: dict[str, tuple[int, int]] = {}
            for _, mshape, cshape in shapes:
                if len(mshape) != len(cshape):
                    continue
                for m, c in zip(mshape, cshape, strict=True):
                    if m != c:
                        for f in _config_fields_with_value(config, m):
                            causes.setdefault(f, (m, c))
            if causes:
                hints = ", ".join(
                    f"{config_name}.{f} is {m} here, the checkpoint has {c}" for f, (m, c) in causes.items()
                )
                parts.append(f"likely cause: {hints}")
    if strict and missing:
        parts.append(f"{len(missing)} model keys are missing from the checkpoint ({_shown(missing)})")
    if strict and unexpected:
        parts.append(f"{len(unexpected)} checkpoint keys are not in the model ({_shown(unexpected)})")
    if not parts:
        return None
    return "; ".join(parts)


def load_model_weights(
    model: nn.Module,
    path: str | Path,
    registry: Registry | None = None,
    prefer_ema: bool = True,
    config: Any = None,
) -> str:
    """Load a checkpoint's weights into ``model`` (EMA weights when present and ``prefer_ema``).

    The layout is found among ``registry``'s checkpoint formats (core's own layouts only when
    ``registry`` is ``None``) and loaded with its ``strict``; a non-strict layout logs the keys it
    left out. A model with an ``adapt_checkpoint_state(state) -> dict`` method sees the state dict
    first (e.g. LST keeps its own text projections when a checkpoint's text encoder differs: they
    are unused at inference). ``config`` (the model's config) lets the error name the config field a shape mismatch
    points to. Returns where the weights came from (``"ema"``, ``"model"``, ...).

    Raises :class:`DataFormatError` with one summarised message if the file holds no weights or
    they do not fit the model.
    """
    ckpt = load_checkpoint(path)
    weights, layout = find_weights(ckpt, registry, prefer_ema, path)
    adapt = getattr(model, "adapt_checkpoint_state", None)
    if callable(adapt):
        weights.state_dict = dict(adapt(weights.state_dict))
    problem = describe_mismatch(model, weights.state_dict, weights.strict, config)
    if problem is not None:
        raise DataFormatError(path, f"weights ({layout} layout) do not fit {type(model).__name__}: {problem}")
    result = model.load_state_dict(weights.state_dict, strict=weights.strict)
    if not weights.strict and (result.missing_keys or result.unexpected_keys):
        logger.warning(
            "%s (%s layout, loaded as its release does with strict=False): %d model keys not in the file (%s); "
            "%d file keys unused (%s)",
            path,
            layout,
            len(result.missing_keys),
            _shown(list(result.missing_keys)) or "-",
            len(result.unexpected_keys),
            _shown(list(result.unexpected_keys)) or "-",
        )
    return weights.source
