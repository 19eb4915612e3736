"""Graph construction: adjacency normalisation, symmetry of the tree, subsets, modality matrices, bones."""

from __future__ import annotations

import numpy as np
import pytest

from tal.skeleton_lst.graphs import (
    BODY_PARTS,
    BONE_PAIRS,
    GRAPHS,
    binary_adjacency,
    column_normalize,
    modality_matrix,
    spatial_adjacency,
)


@pytest.mark.parametrize("dataset,v", [("ntu", 25), ("ucla", 20)])
def test_spatial_subsets(dataset: str, v: int) -> None:
    A = spatial_adjacency(dataset)
    assert A.shape == (3, v, v)
    assert np.array_equal(A[0], np.eye(v))
    # every nonzero column of the inward/outward subsets sums to 1 (column normalisation)
    for sub in A[1:]:
        sums = sub.sum(axis=0)
        assert np.allclose(sums[sums > 0], 1.0)
    # inward and outward are the same edges in opposite directions: their supports are transposes
    assert np.array_equal(A[1] > 0, (A[2] > 0).T)
    # the undirected skeleton (inward + outward) is symmetric and a tree: V - 1 edges, connected
    und = (A[1] > 0) | (A[2] > 0)
    assert np.array_equal(und, und.T)
    assert und.sum() == 2 * (v - 1)
    reach = np.eye(v, dtype=bool)
    for _ in range(v):
        reach = reach | ((reach.astype(int) @ und.astype(int)) > 0)
    assert reach.all()


def test_ntu_inward_by_hand() -> None:
    A = spatial_adjacency("ntu")
    # joint 21 (index 20, spine at the shoulders) is the parent of 2, 3, 5, 9 (1-based): its inward
    # row gathers those four children; columns of the children each sum to 1 with a single entry
    assert set(np.flatnonzero(A[1][20])) == {1, 2, 4, 8}
    assert A[1][20, 1] == 1.0
    # outward: column of joint 21 sends to its four children 2, 3, 5, 9, each 1/4 after normalisation
    col = A[2][:, 20]
    assert np.allclose(col[[1, 2, 4, 8]], 0.25)


def test_column_normalize_hand_values() -> None:
    a = np.array([[1.0, 0.0, 2.0], [1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    out = column_normalize(a)
    assert np.allclose(out, [[0.5, 0.0, 0.5], [0.5, 0.0, 0.5], [0.0, 0.0, 0.0]])


def test_modality_powers_as_facts() -> None:
    eye25, eye20 = np.eye(25), np.eye(20)
    assert np.array_equal(modality_matrix("ntu", 8), eye25)  # A^8 = 0: NTU joint is the identity
    assert not np.array_equal(modality_matrix("ntu", 7), eye25)  # the tree is 7 edges deep
    u6 = modality_matrix("ucla", 6)
    assert np.count_nonzero(u6 - eye20) == 2  # NW-UCLA joint k=6: two nonzeros, not the identity
    assert np.array_equal(modality_matrix("ucla", 7), eye20)
    assert np.array_equal(modality_matrix("ntu", 0), eye25)


def test_ntu_bone_is_joint_minus_parent() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(25, 3))
    bone = modality_matrix("ntu", 1) @ x
    # InfoGCN tree rooted at joint 2: parent of 1 is 2, of 21 is 2, of 3 is 21, of 22 is 23 (1-based)
    assert np.allclose(bone[0], x[0] - x[1])
    assert np.allclose(bone[20], x[20] - x[1])
    assert np.allclose(bone[2], x[2] - x[20])
    assert np.allclose(bone[21], x[21] - x[22])
    assert np.allclose(bone[1], x[1])  # the root keeps its coordinates


def test_ucla_outward_subtracts_children() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 3))
    y = modality_matrix("ucla", 1) @ x
    # CTR-GCN's NW-UCLA outward (parent, child): joint 3 (index 2) has children 2, 4, 5, 9 (1-based)
    assert np.allclose(y[2], x[2] - x[1] - x[3] - x[4] - x[8])
    assert np.allclose(y[15], x[15])  # a foot has no child
    y6 = modality_matrix("ucla", 6) @ x
    # depth-6 descendants of joint 3 are the feet 16 and 20 (1-based)
    assert np.allclose(y6[2], x[2] - x[15] - x[19])


def test_bone_pairs_and_parts() -> None:
    assert len(BONE_PAIRS["ntu"]) == 25 and (20, 20) in BONE_PAIRS["ntu"]
    assert len(BONE_PAIRS["ucla"]) == 20 and (2, 2) in BONE_PAIRS["ucla"]
    assert sorted(v for v, _ in BONE_PAIRS["ntu"]) == list(range(25))
    for (dataset, _), parts in BODY_PARTS.items():
        assert len(parts) == 4
        assert all(0 <= j < GRAPHS[dataset].num_joints for part in parts for j in part)
    assert BODY_PARTS[("ntu", "joint")][0] == (2, 3, 20)
    assert BODY_PARTS[("ucla", "joint")][2] == (0, 1, 11, 15)


def test_binary_adjacency_orientation() -> None:
    a = binary_adjacency(((0, 1),), 2)
    assert a[0, 1] == 1 and a[1, 0] == 0
    assert binary_adjacency(((0, 1),), 2, transpose=True)[1, 0] == 1
