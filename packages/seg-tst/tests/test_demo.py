"""`tal demo` (quick mode): trains both stages on the synthetic Breakfast data and reports the scores."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tal.seg_tst.demo import fallback_labels, run_demo


def test_quick_demo_runs_and_reports(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        headline = run_demo(tmp_path, quick=True)
        assert torch.get_num_threads() == 2  # the demo runs on one thread and restores the caller's setting
    finally:
        torch.set_num_threads(threads)
    assert set(headline) == {"backbone F1@50", "TST F1@50", "backbone Edit", "TST Edit"}
    assert all(0.0 <= v <= 100.0 for v in headline.values())
    results = json.loads((tmp_path / "seg_tst_results.json").read_text())
    assert set(results["scores"]) == {"backbone", "refined"}
    assert (tmp_path / "seg_tst_bars.png").stat().st_size > 0


def test_fallback_labels_give_a_cross_subject_split(tmp_path: Path) -> None:
    from tal.seg_tst.data import SyntheticBreakfast, SyntheticBreakfastConfig

    root = fallback_labels(tmp_path / "labels")
    test = SyntheticBreakfast(SyntheticBreakfastConfig(root=str(root), subset="test"))
    train = SyntheticBreakfast(SyntheticBreakfastConfig(root=str(root), subset="train"))
    assert len(test) == 4 and len(train) == 8
    assert all(v.startswith("P17_") for v in test.video_ids)
