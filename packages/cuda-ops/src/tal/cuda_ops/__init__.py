"""tal.cuda_ops: 1-D NMS / soft-NMS / batched NMS, segment IoU and skeleton graph aggregation.

Every op is a ``torch.library`` custom op (``torch.ops.tal_ops.*``) with a fake
implementation (``torch.compile``-able), a pure-torch reference, a C++ CPU
kernel and a Triton GPU kernel. Importing is cheap and never fails. A missing C++
library is compiled on the first CPU call that needs it (into ``$TAL_CACHE_DIR``,
default ``~/.cache/tal``); without a compiler, Triton or a GPU the references run,
and :func:`backend_info` says which implementation serves each op on each device and why.
"""

from __future__ import annotations

from . import _backend
from ._backend import BackendChoice, ExtensionUnavailableError, backend_info, format_backend_info
from ._cpu.jit import build as build_extension
from .batched_nms import batched_nms
from .graph_aggregate import graph_aggregate
from .nms import nms_1d, soft_nms_1d
from .segment_iou import segment_iou, segment_iou_matched

__all__ = [
    "BackendChoice",
    "ExtensionUnavailableError",
    "backend_info",
    "batched_nms",
    "build_extension",
    "format_backend_info",
    "graph_aggregate",
    "nms_1d",
    "segment_iou",
    "segment_iou_matched",
    "soft_nms_1d",
]

__version__ = "0.1.0"

_backend.startup_report()
