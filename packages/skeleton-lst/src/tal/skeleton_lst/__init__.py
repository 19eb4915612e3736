"""tal-skeleton-lst: CTR-GCN with LST language supervision for skeleton action recognition.

Public API: :func:`build_model` (release-compatible CTR-GCN / LST), :func:`read_nw_ucla` and
:func:`ucla_eval_transform` (NW-UCLA as the release's validation feeder), :func:`read_ntu_skeleton`
(raw NTU ``.skeleton`` files). Importing is light: submodules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["build_model", "read_ntu_skeleton", "read_nw_ucla", "ucla_eval_transform"]

_LAZY = {
    "build_model": "tal.skeleton_lst.models",
    "read_nw_ucla": "tal.skeleton_lst.data.ucla",
    "ucla_eval_transform": "tal.skeleton_lst.data.ucla",
    "read_ntu_skeleton": "tal.skeleton_lst.data.ntu_skeleton",
}

if TYPE_CHECKING:
    from tal.skeleton_lst.data.ntu_skeleton import read_ntu_skeleton
    from tal.skeleton_lst.data.ucla import read_nw_ucla, ucla_eval_transform
    from tal.skeleton_lst.models import build_model


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tal.skeleton_lst' has no attribute {name!r}")
