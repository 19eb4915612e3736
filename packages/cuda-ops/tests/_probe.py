"""A probe script run in fresh processes by the first-use build and isolated install tests."""

from __future__ import annotations

import textwrap

COMPILE_LINE = "tal.cuda_ops: compiling the C++ CPU kernels"
FALLBACK_LINE = "tal.cuda_ops: the C++ CPU kernels are unavailable"

# Imports tal.cuda_ops (which must not compile anything), then runs soft-NMS on CPU and compares it
# with the pure-torch reference kernel.
PROBE = textwrap.dedent(
    """
    import json
    import torch
    import tal.cuda_ops as ops
    from tal.cuda_ops import _backend

    pending_after_import = _backend.EXT.pending
    g = torch.Generator().manual_seed(0)
    segs = torch.sort(torch.rand(300, 2, generator=g) * 100, 1).values
    scores = torch.rand(300, generator=g)
    ids, new_scores = ops.soft_nms_1d(segs, scores, 0.3, 0.5, 0.01, "linear")
    ops.nms_1d(segs, scores, 0.5)
    ref_ids, ref_scores = _backend.bound_kernel("soft_nms_1d", "reference")(segs, scores, 0.3, 0.5, 0.01, 1)
    choice = ops.backend_info()["soft_nms_1d"]["cpu"]
    print(json.dumps({
        "pending_after_import": pending_after_import,
        "impl": choice.impl,
        "reason": choice.reason,
        "equal": ids.tolist() == ref_ids.tolist() and torch.equal(new_scores, ref_scores),
    }))
    """
)
