"""The demo in quick mode: three trainings, streamed evaluation, files written."""

from __future__ import annotations

import json
from pathlib import Path

from tal.stream_rl.demo import run_demo


def test_quick_demo(tmp_path: Path) -> None:
    headline = run_demo(tmp_path, quick=True)
    assert headline["stream_equals_offline"] is True
    for objective in ("supervised", "reward_weighted", "reinforce_td"):
        assert 0.0 <= headline[f"{objective}_Edit"] <= 100.0
    assert headline["clip_ms_median"] > 0
    doc = json.loads((tmp_path / "stream_rl_results.json").read_text())
    assert set(doc["scores"]) == {"supervised", "+RL release", "+RL TD"}
    assert (tmp_path / "stream_rl_labels.png").stat().st_size > 0
