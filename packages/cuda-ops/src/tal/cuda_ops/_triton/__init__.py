"""Triton GPU kernels of tal.cuda_ops (imported lazily, only when Triton is installed).

Every function has the contract of the matching ``torch.ops.tal_ops_ext`` C++
op, so the op modules can use either. The kernels run on CUDA tensors, or on
CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1``, used by the tests).
"""

from .graph import graph_refined_bwd, graph_refined_fwd, graph_shared_bwd, graph_shared_fwd
from .iou import segment_iou, segment_iou_matched
from .nms import MAX_GROUP, hard_nms_grouped, seg_voting, soft_nms_grouped

__all__ = [
    "MAX_GROUP",
    "graph_refined_bwd",
    "graph_refined_fwd",
    "graph_shared_bwd",
    "graph_shared_fwd",
    "hard_nms_grouped",
    "seg_voting",
    "segment_iou",
    "segment_iou_matched",
    "soft_nms_grouped",
]
