"""Triton GPU kernels of tal.cuda_ops (imported lazily, only when Triton is installed).

Every function has the name and contract of the matching primitive in
``tal.cuda_ops._reference`` (and of the C++ op ``torch.ops.tal_ops_ext.<name>``), for
contiguous inputs of one dtype. The kernels run on CUDA tensors, or on CPU tensors under
Triton's interpreter (``TRITON_INTERPRET=1``, used by the tests). Choosing between them and
the references (groups above ``MAX_GROUP``, for one) is ``tal.cuda_ops._backend``'s job.
"""

from .graph import graph_refined_bwd, graph_refined_fwd, graph_shared_bwd, graph_shared_fwd
from .iou import segment_iou, segment_iou_matched
from .nms import MAX_GROUP, fits, hard_nms_grouped, largest_group, seg_voting, soft_nms_grouped

__all__ = [
    "MAX_GROUP",
    "fits",
    "graph_refined_bwd",
    "graph_refined_fwd",
    "graph_shared_bwd",
    "graph_shared_fwd",
    "hard_nms_grouped",
    "largest_group",
    "seg_voting",
    "segment_iou",
    "segment_iou_matched",
    "soft_nms_grouped",
]
