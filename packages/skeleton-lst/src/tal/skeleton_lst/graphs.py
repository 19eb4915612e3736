"""Skeleton graphs of NTU RGB+D (25 joints) and NW-UCLA (20 joints), as CTR-GCN and LST build them.

Joint indices are 0-based here; the edge lists are written 1-based as in the originals and converted.

* ``spatial_adjacency``: CTR-GCN's three subsets ``A (3, V, V)`` = ``[I, norm(inward), norm(outward)]``.
  An edge ``(child, parent)`` of the inward list sets ``inward[parent, child] = 1``, so
  ``(A_in @ x)[parent]`` gathers the children; each subset is column-normalised
  (``A[:, j] /= sum_i A[i, j]`` for columns with a nonzero sum).
* ``modality_matrix``: LST's in-model modality transform ``I - A_out^k`` (applied per frame as
  ``x <- (I - A_out^k) x`` on the joint axis). ``A_out`` is a binary matrix with ``A_out[i, j] = 1``
  for each pair ``(i, j)`` of the release's *outward* list: for NTU the InfoGCN tree rooted at the
  spine-mid joint, listed (child, parent), so ``A_out x`` is each joint's parent and ``k = 1`` gives
  bones (``joint - parent``); for NW-UCLA CTR-GCN's outward list, (parent, child), so ``A_out x`` is
  the sum of each joint's children. The NTU tree is 7 edges deep (``A_out^8 = 0``: ``k = 8`` is the
  identity); the NW-UCLA tree is 6 deep (``A_out^6`` has two nonzeros: ``k = 6`` is not the identity).
* ``BONE_PAIRS``: the feeders' bone definition ``bone[v1] = x[v1] - x[v2]`` (CTR-GCN ``bone_pairs.py``).
* ``BODY_PARTS``: LST's four part groups (head, hand, hip, foot) pooled for the part-text losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BODY_PARTS",
    "BONE_PAIRS",
    "GRAPHS",
    "PART_NAMES",
    "SkeletonGraph",
    "binary_adjacency",
    "column_normalize",
    "get_graph",
    "modality_matrix",
    "spatial_adjacency",
]

# CTR-GCN graph/ntu_rgb_d.py: (child, parent), 1-based; 21 = spine at the shoulders is the root.
NTU_INWARD_1BASED: tuple[tuple[int, int], ...] = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
    (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (23, 8), (24, 25),
    (25, 12),
)  # fmt: skip
# InfoGCN/LST graph/ntu_rgb_d.py (the list LST calls inward): (parent, child), 1-based, rooted at joint 2.
NTU_LST_TREE_1BASED: tuple[tuple[int, int], ...] = (
    (2, 1), (2, 21), (21, 3), (3, 4), (21, 5), (5, 6), (6, 7), (7, 8), (8, 23), (23, 22), (21, 9), (9, 10),
    (10, 11), (11, 12), (12, 25), (25, 24), (1, 13), (13, 14), (14, 15), (15, 16), (1, 17), (17, 18), (18, 19),
    (19, 20),
)  # fmt: skip
# CTR-GCN graph/ucla.py: (child, parent), 1-based; 3 = shoulder centre is the root.
UCLA_INWARD_1BASED: tuple[tuple[int, int], ...] = (
    (1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11), (13, 1),
    (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
)  # fmt: skip

#: ``bone[v1] = x[v1] - x[v2]`` for each 0-based ``(v1, v2)`` (the feeders' bone modality).
BONE_PAIRS: dict[str, tuple[tuple[int, int], ...]] = {
    "ntu": tuple((a - 1, b - 1) for a, b in (*NTU_INWARD_1BASED, (21, 21))),
    "ucla": tuple((a - 1, b - 1) for a, b in (*UCLA_INWARD_1BASED, (3, 3))),
}

PART_NAMES: tuple[str, ...] = ("head", "hand", "hip", "foot")
#: 0-based joint groups of LST's 4-part models, in the order of the part losses (head, hand, hip, foot).
#: NTU joint (``Model_lst_4part``), NTU bone (``Model_lst_4part_bone``), NW-UCLA (``_bone_ucla``).
BODY_PARTS: dict[tuple[str, str], tuple[tuple[int, ...], ...]] = {
    ("ntu", "joint"): ((2, 3, 20), (4, 5, 6, 7, 8, 9, 10, 11, 21, 22, 23, 24), (0, 1, 2, 12, 16), tuple(range(12, 20))),
    ("ntu", "bone"): ((2, 3), (4, 5, 6, 7, 8, 9, 10, 11, 20, 22, 23, 24), (0, 1, 12, 16), tuple(range(12, 20))),
    ("ucla", "joint"): ((2,), tuple(range(3, 11)), (0, 1, 11, 15), tuple(range(11, 19))),
    ("ucla", "bone"): ((2,), tuple(range(3, 11)), (0, 1, 11, 15), tuple(range(11, 19))),
}


@dataclass(frozen=True)
class SkeletonGraph:
    """A dataset's skeleton: ``inward`` (child, parent) pairs of CTR-GCN's graph and the outward
    pairs (as the release lists them) of LST's modality matrix, all 0-based."""

    name: str
    num_joints: int
    inward: tuple[tuple[int, int], ...]
    modality_outward: tuple[tuple[int, int], ...]

    @property
    def outward(self) -> tuple[tuple[int, int], ...]:
        """CTR-GCN's outward pairs: the inward ones reversed, (parent, child)."""
        return tuple((j, i) for i, j in self.inward)


def _zero_based(pairs: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    return tuple((a - 1, b - 1) for a, b in pairs)


_NTU_INWARD = _zero_based(NTU_INWARD_1BASED)
_UCLA_INWARD = _zero_based(UCLA_INWARD_1BASED)
GRAPHS: dict[str, SkeletonGraph] = {
    # LST's outward list for NTU reverses its (parent, child) tree: (child, parent)
    "ntu": SkeletonGraph("ntu", 25, _NTU_INWARD, tuple((c, p) for p, c in _zero_based(NTU_LST_TREE_1BASED))),
    # for NW-UCLA the release uses CTR-GCN's outward list, (parent, child)
    "ucla": SkeletonGraph("ucla", 20, _UCLA_INWARD, tuple((p, c) for c, p in _UCLA_INWARD)),
}


def get_graph(dataset: str) -> SkeletonGraph:
    """The graph of ``dataset`` (``"ntu"`` or ``"ucla"``)."""
    try:
        return GRAPHS[dataset]
    except KeyError:
        raise ValueError(f"unknown skeleton dataset {dataset!r}; known: {', '.join(GRAPHS)}") from None


def binary_adjacency(pairs: tuple[tuple[int, int], ...], num_joints: int, transpose: bool = False) -> np.ndarray:
    """``(V, V)`` float64 with ``A[i, j] = 1`` for each ``(i, j)`` in ``pairs`` (``A[j, i]`` if ``transpose``)."""
    a = np.zeros((num_joints, num_joints))
    for i, j in pairs:
        if transpose:
            a[j, i] = 1.0
        else:
            a[i, j] = 1.0
    return a


def column_normalize(a: np.ndarray) -> np.ndarray:
    """``A`` with each column divided by its sum (columns summing to 0 stay 0)."""
    sums = a.sum(axis=0)
    scale = np.where(sums > 0, 1.0 / np.where(sums > 0, sums, 1.0), 0.0)
    return a * scale[None, :]


def spatial_adjacency(dataset: str) -> np.ndarray:
    """CTR-GCN's ``(3, V, V)`` float64 subsets: identity, normalised inward, normalised outward."""
    g = get_graph(dataset)
    v = g.num_joints
    inward = column_normalize(binary_adjacency(g.inward, v, transpose=True))
    outward = column_normalize(binary_adjacency(g.outward, v, transpose=True))
    return np.stack([np.eye(v), inward, outward])


def modality_matrix(dataset: str, k: int) -> np.ndarray:
    """LST's ``(V, V)`` float64 ``I - A_out^k`` (``k = 0``: the identity, as the release's ``get_A``)."""
    g = get_graph(dataset)
    eye = np.eye(g.num_joints)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if k == 0:
        return eye
    a_out = binary_adjacency(g.modality_outward, g.num_joints)
    return eye - np.linalg.matrix_power(a_out, k)
