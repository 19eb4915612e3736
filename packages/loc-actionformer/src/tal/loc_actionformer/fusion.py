"""Fusion of video-level classification scores with class-agnostic detections (the release's ``ext_score_file``).

The release's ActivityNet (and older THUMOS) configs train one "action" class and, at evaluation,
combine each video's detections with an external classifier's scores
(``libs/utils/postprocessing.py::postprocess_results``): keep the ``num_pred`` best detections,
take the ``top_k`` classes of the video, and emit every detection once per class with score
``sqrt(class_score * detection_score)``, class by class.

Score files: JSON (``{"results": {video_id: [score per class]}}`` or the bare mapping) or a pickle
of ``{video_id: array}``. Pickles are read with an unpickler that only builds dicts, lists, numbers,
strings and NumPy arrays: nothing else in the file can run.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tal.core.errors import DataFormatError
from tal.core.types import Segments

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only NumPy arrays and plain values)")


def load_class_scores(path: str | Path) -> dict[str, np.ndarray]:
    """``{video_id: (num_classes,) float64}`` from a JSON or pickle score file."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(p, "external classification score file (test_cfg.ext_score_file) not found")
    raw: Any
    try:
        if p.suffix.lower() == ".json":
            raw = json.loads(p.read_text(encoding="utf-8"))
        else:
            raw = _ArrayUnpickler(io.BytesIO(p.read_bytes())).load()
    except (json.JSONDecodeError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataFormatError(p, f"cannot read the class scores: {exc}") from None
    if isinstance(raw, Mapping) and "results" in raw and isinstance(raw["results"], Mapping):
        raw = raw["results"]
    if not isinstance(raw, Mapping):
        raise DataFormatError(p, f"expected a mapping of video id to class scores, got {type(raw).__name__}")
    out: dict[str, np.ndarray] = {}
    for vid, scores in raw.items():
        arr = np.asarray(scores, dtype=np.float64).reshape(-1)
        if arr.size == 0 or not np.isfinite(arr).all():
            raise DataFormatError(p, "class scores must be a non-empty list of finite numbers", str(vid))
        out[str(vid)] = arr
    return out


def fuse_class_scores(dets: Segments, class_scores: np.ndarray, top_k: int = 2, num_pred: int = 200) -> Segments:
    """Combine one video's detections with its classification scores (see the module docs).

    Args:
        dets: detections (any labels; they are replaced) with scores.
        class_scores: ``(num_classes,)`` video-level scores.

    Returns:
        ``top_k * min(num_pred, N)`` detections, class by class (best class first).
    """
    if dets.scores is None:
        raise ValueError("fusion needs detection scores")
    scores = dets.scores.double().numpy()
    order = np.argsort(scores, kind="stable")[::-1][:num_pred]
    det_scores = scores[order]
    segs = dets.segments.double().numpy()[order]
    cls_order = np.argsort(class_scores, kind="stable")[::-1][:top_k]
    fused = np.sqrt(class_scores[cls_order][:, None] * det_scores[None, :]).reshape(-1)
    labels = np.repeat(cls_order, len(order))
    return Segments(
        torch.from_numpy(np.tile(segs, (len(cls_order), 1))),
        torch.from_numpy(labels.astype(np.int64)),
        torch.from_numpy(fused),
    )
