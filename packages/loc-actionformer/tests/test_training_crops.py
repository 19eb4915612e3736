"""Training crops and ActivityNet clean-up, against values worked out by hand."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import torch

from tal.loc_actionformer.data import drop_outside, truncate_feats


def scripted(monkeypatch: pytest.MonkeyPatch, values: list[int]) -> list[tuple[int, int]]:
    """Make ``random.randint`` return ``values`` in turn; returns the (a, b) it was called with."""
    calls: list[tuple[int, int]] = []
    it: Iterator[int] = iter(values)

    def fake(a: int, b: int) -> int:
        calls.append((a, b))
        v = next(it)
        assert a <= v <= b
        return v

    monkeypatch.setattr(random, "randint", fake)
    return calls


def feats(t: int) -> torch.Tensor:
    return torch.arange(2 * t, dtype=torch.float32).reshape(2, t)


def test_short_input_without_crop_ratio_is_unchanged() -> None:
    f, s, lab = feats(8), torch.tensor([[1.0, 3.0]]), torch.tensor([2])
    out = truncate_feats(f, s, lab, max_seq_len=10, trunc_thresh=0.5, offset=0.5)
    assert out[0] is f and out[1] is s and out[2] is lab


def test_crop_window_with_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    # T=20 cropped to 10 from st=6: window [6 - 0.5, 16 + 0.5]
    calls = scripted(monkeypatch, [6])
    segs = torch.tensor([[2.0, 6.0], [8.0, 14.0], [15.0, 19.0]])
    f, s, lab = truncate_feats(feats(20), segs, torch.tensor([0, 1, 2]), 10, 0.5, 0.5)
    assert calls == [(0, 10)]
    # [2, 6] keeps 0.5 of 4 (0.125: dropped); [8, 14] is inside; [15, 19] keeps 1.5 of 4 (0.375: dropped)
    torch.testing.assert_close(s, torch.tensor([[2.0, 8.0]]))
    assert lab.tolist() == [1]
    torch.testing.assert_close(f, feats(20)[:, 6:16])


def test_clipping_to_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted(monkeypatch, [0])
    # window [-0.5, 10.5]: [8, 12] keeps 2.5 of 4 (>= 0.5) and is clipped to [8, 10.5]
    _, s, lab = truncate_feats(feats(20), torch.tensor([[8.0, 12.0]]), torch.tensor([1]), 10, 0.5, 0.5)
    torch.testing.assert_close(s, torch.tensor([[8.0, 10.5]]))
    assert lab.tolist() == [1]


def test_retries_until_an_action_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = scripted(monkeypatch, [0, 9])
    # st=0: window [-0.5, 10.5] misses [15, 19]; st=9: window [8.5, 19.5] keeps it, shifted by -9
    _, s, lab = truncate_feats(feats(20), torch.tensor([[15.0, 19.0]]), torch.tensor([2]), 10, 0.5, 0.5)
    assert len(calls) == 2
    torch.testing.assert_close(s, torch.tensor([[6.0, 10.0]]))
    assert lab.tolist() == [2]


def test_last_draw_is_used_when_no_window_keeps_an_action(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted(monkeypatch, [3, 4, 5])
    f, s, lab = truncate_feats(
        feats(20), torch.tensor([[0.0, 40.0]]), torch.tensor([0]), 10, 0.9, 0.0, max_num_trials=3
    )
    assert s.shape == (0, 2) and lab.shape == (0,)
    torch.testing.assert_close(f, feats(20)[:, 5:15])


def test_crop_ratio_on_short_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    # T=10 <= 20: the crop length is drawn in [round(0.9 * 10), round(1.0 * 10)] = [9, 10], then the start
    calls = scripted(monkeypatch, [9, 1])
    f, s, _ = truncate_feats(feats(10), torch.tensor([[2.0, 5.0]]), torch.tensor([0]), 20, 0.5, 0.0, (0.9, 1.0))
    assert calls == [(9, 10), (0, 1)]
    assert f.shape == (2, 9)
    torch.testing.assert_close(s, torch.tensor([[1.0, 4.0]]))
    scripted(monkeypatch, [10])  # drawing the full length leaves the input as it is
    f2 = feats(10)
    assert truncate_feats(f2, torch.tensor([[2.0, 5.0]]), torch.tensor([0]), 20, 0.5, 0.0, (0.9, 1.0))[0] is f2


def test_zero_length_segments_are_never_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted(monkeypatch, [0])
    _, s, lab = truncate_feats(feats(20), torch.tensor([[3.0, 3.0], [4.0, 6.0]]), torch.tensor([0, 1]), 10, 0.5, 0.0)
    assert lab.tolist() == [1]
    torch.testing.assert_close(s, torch.tensor([[4.0, 6.0]]))


def test_drop_outside_activitynet_rule() -> None:
    # 10 steps, offset 0.5: the features end at 10.5
    segs = torch.tensor([[2.0, 4.0], [9.0, 13.0], [8.0, 12.0], [11.0, 12.0], [5.0, 5.0]])
    s, lab = drop_outside(segs, torch.tensor([0, 1, 2, 3, 4]), 10, 0.5, 0.5)
    # [9, 13] keeps 1.5 / 4 (dropped); [8, 12] keeps 2.5 / 4 (clipped); [11, 12] starts after the end; [5, 5] empty
    assert lab.tolist() == [0, 2]
    torch.testing.assert_close(s, torch.tensor([[2.0, 4.0], [8.0, 10.5]]))
