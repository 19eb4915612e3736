"""Points of the pyramid and the assignment of ground truth to them, against values worked out by hand."""

from __future__ import annotations

import torch
from conftest import BIG, two_level_model

from tal.loc_actionformer import ActionFormer
from tal.loc_actionformer.modeling.points import PointGenerator


def test_point_generator_two_levels() -> None:
    gen = PointGenerator(8, [1, 2], [(0, 4), (4, BIG)])
    pts = gen([torch.zeros(1, 3, 8), torch.zeros(1, 3, 4)])
    expected0 = torch.tensor([[t, 0.0, 4.0, 1.0] for t in range(8)])
    expected1 = torch.tensor([[0.0, 4.0, BIG, 2.0], [2.0, 4.0, BIG, 2.0], [4.0, 4.0, BIG, 2.0], [6.0, 4.0, BIG, 2.0]])
    torch.testing.assert_close(pts[0], expected0, rtol=0, atol=0)
    torch.testing.assert_close(pts[1], expected1, rtol=0, atol=0)
    # not kept in the state dict (non-persistent), and longer inputs extend the same grid
    assert len(gen.state_dict()) == 0
    longer = gen([torch.zeros(1, 3, 10), torch.zeros(1, 3, 5)])
    torch.testing.assert_close(longer[1][4], torch.tensor([8.0, 4.0, BIG, 2.0]))


def _labels(model: ActionFormer, segments, labels):
    pts = model.point_generator([torch.zeros(1, 1, 16), torch.zeros(1, 1, 8)])
    cls_t, reg_t = model.label_points(pts, [torch.tensor(segments)], [torch.tensor(labels)])
    return cls_t[0], reg_t[0]  # (24, C), (24, 2): rows 0-15 level 0 (t = row), rows 16-23 level 1 (t = 2 (row - 16))


def _positives(cls_t: torch.Tensor, reg_t: torch.Tensor) -> dict[int, tuple[list[float], list[float]]]:
    rows = torch.nonzero(cls_t.sum(-1) > 0).squeeze(1).tolist()
    return {r: (cls_t[r].tolist(), reg_t[r].tolist()) for r in rows}


def test_label_assignment_two_segments() -> None:
    # A = [2, 5] class 0, B = [8, 15] class 1; centre sampling radius 1.5 strides
    # level 0 (stride 1): A's centre 3.5 -> sampling window [2, 5] -> t = 3, 4 (max distance 2, in (0, 4));
    #                     B's centre 11.5 -> window [10, 13] -> t = 11, 12 (max distance 4, in (0, 4))
    # level 1 (stride 2): A -> window [2, 5] -> t = 4, max distance 2 is outside (4, 10000): negative;
    #                     B -> window [8.5, 14.5] -> t = 10, 12, 14 with max distances 5, 4, 6: positive
    cls_t, reg_t = _labels(two_level_model(), [[2.0, 5.0], [8.0, 15.0]], [0, 1])
    expected = {
        3: ([1.0, 0.0], [1.0, 2.0]),
        4: ([1.0, 0.0], [2.0, 1.0]),
        11: ([0.0, 1.0], [3.0, 4.0]),
        12: ([0.0, 1.0], [4.0, 3.0]),
        16 + 5: ([0.0, 1.0], [2 / 2, 5 / 2]),  # t = 10, offsets (2, 5) / stride 2
        16 + 6: ([0.0, 1.0], [4 / 2, 3 / 2]),  # t = 12
        16 + 7: ([0.0, 1.0], [6 / 2, 1 / 2]),  # t = 14
    }
    assert _positives(cls_t, reg_t) == expected


def test_label_assignment_shortest_segment_wins() -> None:
    # C = [9, 14] (class 0, length 5) overlaps B = [8, 15] (class 1, length 7):
    # level 0: t = 11, 12 qualify for both -> C; level 1: t = 10 qualifies for both (C's max distance 4) -> C,
    # t = 12 has max distance 3 to C (outside (4, 10000)) -> B; t = 14 is outside C's window -> B
    cls_t, reg_t = _labels(two_level_model(), [[2.0, 5.0], [8.0, 15.0], [9.0, 14.0]], [0, 1, 0])
    pos = _positives(cls_t, reg_t)
    assert pos[11] == ([1.0, 0.0], [2.0, 3.0])
    assert pos[12] == ([1.0, 0.0], [3.0, 2.0])
    assert pos[16 + 5] == ([1.0, 0.0], [1 / 2, 4 / 2])
    assert pos[16 + 6] == ([0.0, 1.0], [4 / 2, 3 / 2])
    assert pos[16 + 7] == ([0.0, 1.0], [6 / 2, 1 / 2])


def test_label_assignment_equal_lengths_give_both_classes() -> None:
    cls_t, _ = _labels(two_level_model(), [[2.0, 5.0], [2.0, 5.0]], [0, 1])
    assert _positives(cls_t, torch.zeros(24, 2)).keys() == {3, 4}
    assert cls_t[3].tolist() == [1.0, 1.0]


def test_label_assignment_without_centre_sampling() -> None:
    # "none": any point strictly inside the segment; [8, 15] on level 0 -> t = 9..14, range (0, 4) keeps
    # t with max(t - 8, 15 - t) <= 4 -> t = 11, 12
    cls_t, reg_t = _labels(two_level_model(center_sample="none"), [[8.0, 15.0]], [1])
    pos = _positives(cls_t, reg_t)
    level0 = sorted(r for r in pos if r < 16)
    assert level0 == [11, 12]
    # level 1: t = 10, 12, 14 have max distance 5, 4, 6 -> all three
    assert sorted(r - 16 for r in pos if r >= 16) == [5, 6, 7]


def test_label_assignment_no_segments() -> None:
    cls_t, reg_t = _labels(two_level_model(), torch.zeros(0, 2).tolist(), [])
    assert cls_t.shape == (24, 2) and cls_t.sum() == 0 and reg_t.abs().sum() == 0
