"""Per-video feature files: ``.npy``, ``.npz``, ``.pt``.

Every reader returns a float32 ``(C, T)`` tensor. On disk, ActionFormer's THUMOS14/ActivityNet/Ego4D
``.npy`` files and EPIC-Kitchens ``.npz`` files (array under key ``"feats"``) are ``(T, C)``
(``layout="TC"``); MS-TCN's ``features/<video>.npy`` are ``(C, T)`` (``layout="CT"``).
``.pt`` files are loaded with ``torch.load(..., weights_only=True)``: no code from the file runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from tal.core.errors import DataFormatError
from tal.core.formats._common import PathLike, close_names_hint, require_file
from tal.core.formats.atomic import atomic_open

FeatureLayout = Literal["TC", "CT"]
FEATURE_EXTENSIONS = (".npy", ".npz", ".pt")


def _check_layout(layout: str) -> None:
    if layout not in ("TC", "CT"):
        raise ValueError(f"layout must be 'TC' or 'CT', got {layout!r}")


def _pick(path: Path, arrays: Mapping[str, Any], key: str | None, kind: str) -> Any:
    names = sorted(arrays)
    if key is not None:
        if key not in arrays:
            raise DataFormatError(path, f"no array {key!r} in the {kind}; keys: {', '.join(names) or 'none'}")
        return arrays[key]
    if len(names) == 1:
        return arrays[names[0]]
    if not names:
        raise DataFormatError(path, f"the {kind} holds no array")
    raise DataFormatError(path, f"the {kind} holds several arrays ({', '.join(names)}); pass key= to choose one")


def _load_numpy(path: Path, key: str | None) -> Any:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
        raise DataFormatError(path, "not a NumPy .npy/.npz file (it does not start with the NumPy or zip magic bytes)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataFormatError(path, "holds a Python object array (pickled); expected a numeric array") from None
        raise DataFormatError(path, f"not a valid NumPy file: {exc}") from None
    except (OSError, EOFError) as exc:
        raise DataFormatError(path, f"not a valid NumPy file: {exc}") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            name = _pick(path, {k: k for k in loaded.files}, key, ".npz archive")
            try:
                return loaded[name]
            except ValueError as exc:
                if "allow_pickle" in str(exc):
                    raise DataFormatError(path, f"array {name!r} is a Python object array (pickled)") from None
                raise DataFormatError(path, f"cannot read array {name!r}: {exc}") from None
            except (OSError, EOFError) as exc:
                raise DataFormatError(path, f"cannot read array {name!r}: {exc}") from None
    return loaded


def _load_torch(path: Path, key: str | None) -> Any:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad or unsafe files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataFormatError(path, f"cannot load with torch.load(weights_only=True): {first}") from None
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        if key is not None:
            raise DataFormatError(path, f"holds a single tensor, not a dict with key {key!r}")
        return obj
    if isinstance(obj, Mapping):
        keys = ", ".join(map(str, obj)) or "none"
        if key is not None:
            if key not in obj:
                raise DataFormatError(path, f"no entry {key!r} in the dict; keys: {keys}")
            if not isinstance(obj[key], (torch.Tensor, np.ndarray)):
                raise DataFormatError(path, f"entry {key!r} is a {type(obj[key]).__name__}, not a tensor")
            return obj[key]
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, (torch.Tensor, np.ndarray))}
        if not tensors:
            raise DataFormatError(path, f"the dict holds no tensor; keys: {keys}")
        return _pick(path, tensors, None, "dict")
    raise DataFormatError(path, f"holds a {type(obj).__name__}; expected a tensor or a dict with one tensor")


def check_features(
    path: PathLike, data: Any, layout: FeatureLayout = "TC", expected_channels: int | None = None
) -> torch.Tensor:
    """Validate an on-disk array and return it as a contiguous float32 ``(C, T)`` tensor.

    Checks: 2-D, numeric (integer or float, not bool/complex), ``T > 0`` and ``C > 0``, the channel
    count if ``expected_channels`` is given, and that every value is finite in float32 (the error
    gives the earliest bad time step, and its index in the file's own layout).
    """
    _check_layout(layout)
    if isinstance(data, torch.Tensor):
        t = data.detach().cpu()
        if t.dtype == torch.bool or t.is_complex():
            raise DataFormatError(path, f"features must be numeric, got dtype {t.dtype}")
        if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
            t = t.float()
        arr = t.numpy()
    else:
        arr = np.asarray(data)
        if arr.dtype.kind not in "fiu":
            raise DataFormatError(path, f"features must be numeric, got dtype {arr.dtype}")
    dims = "(T, C)" if layout == "TC" else "(C, T)"
    if arr.ndim != 2:
        raise DataFormatError(path, f"expected a 2-D {dims} array, got shape {tuple(arr.shape)}")
    t_len, chans = (arr.shape[0], arr.shape[1]) if layout == "TC" else (arr.shape[1], arr.shape[0])
    if t_len == 0 or chans == 0:
        raise DataFormatError(path, f"empty features: shape {tuple(arr.shape)} is {dims} with T={t_len}, C={chans}")
    if expected_channels is not None and chans != expected_channels:
        hint = ""
        if t_len == expected_channels:
            hint = f"; the file looks like layout {'CT' if layout == 'TC' else 'TC'!r}"
        raise DataFormatError(
            path,
            f"expected {expected_channels} channels, got {chans} (shape {tuple(arr.shape)}, layout {layout}){hint}",
        )
    with np.errstate(over="ignore", invalid="ignore"):
        disk = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    finite = torch.isfinite(disk)
    if not bool(finite.all()):
        bad_ct = ~(finite.t() if layout == "TC" else finite)  # (C, T)
        t_idx = int(bad_ct.any(dim=0).nonzero()[0])
        c_idx = int(bad_ct[:, t_idx].nonzero()[0])
        i, j = (t_idx, c_idx) if layout == "TC" else (c_idx, t_idx)
        orig = arr[i, j]
        what = f"value {orig!r} overflows float32" if np.isfinite(orig) else f"non-finite value {float(orig)}"
        raise DataFormatError(path, f"{what} at index ({i}, {j}) (time step {t_idx}, channel {c_idx})")
    out = disk.t() if layout == "TC" else disk
    return out.contiguous()


def read_features(
    path: PathLike, *, layout: FeatureLayout = "TC", key: str | None = None, expected_channels: int | None = None
) -> torch.Tensor:
    """Load one video's features as a float32 ``(C, T)`` tensor.

    Args:
        layout: on-disk axis order, ``"TC"`` (ActionFormer) or ``"CT"`` (MS-TCN).
        key: array name inside an ``.npz`` archive or a ``.pt`` dict; needed only when it holds several.
        expected_channels: the channel count ``C`` the caller needs (checked if given).
    """
    _check_layout(layout)
    p = require_file(path)
    ext = p.suffix.lower()
    if ext in (".npy", ".npz"):
        data = _load_numpy(p, key)
    elif ext in (".pt", ".pth"):
        data = _load_torch(p, key)
    else:
        raise DataFormatError(p, f"unsupported feature file type {ext or '(none)'!r}; use .npy, .npz or .pt")
    return check_features(p, data, layout, expected_channels)


def write_features(path: PathLike, features: Any, *, layout: FeatureLayout = "TC", key: str = "feats") -> None:
    """Write ``(C, T)`` features as float32 ``.npy``, ``.npz`` (under ``key``) or ``.pt``, atomically.

    The data are stored in the given on-disk ``layout`` and validated like :func:`check_features`.
    """
    _check_layout(layout)
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in (".npy", ".npz", ".pt", ".pth"):
        raise DataFormatError(p, f"unsupported feature file type {ext or '(none)'!r}; use .npy, .npz or .pt")
    x = check_features(p, features, "CT")  # (C, T) float32, validated
    disk = (x.t() if layout == "TC" else x).contiguous()
    with atomic_open(p, "wb") as f:
        if ext == ".npy":
            np.save(f, disk.numpy())
        elif ext == ".npz":
            arrays: dict[str, Any] = {key: disk.numpy()}
            np.savez(f, **arrays)
        else:
            torch.save(disk, f)


def find_feature_file(
    directory: PathLike, video_id: str, *, prefix: str = "", suffix: str = "", ext: str = ".npy"
) -> Path:
    """``directory/<prefix><video_id><suffix><ext>``; if missing, the error lists close file names."""
    d = Path(directory)
    if not d.is_dir():
        raise DataFormatError(d, "feature directory not found" if not d.exists() else "not a directory")
    ext = ext if not ext or ext.startswith(".") else f".{ext}"
    name = f"{prefix}{video_id}{suffix}{ext}"
    path = d / name
    if path.is_file():
        return path
    hint = close_names_hint(name, sorted(os.listdir(d)))
    raise DataFormatError(path, f"no feature file for video {video_id!r}{hint or '; no similar file names'}")
