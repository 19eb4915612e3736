"""DDP training equals one process with the global batch: the positives are counted over processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parent / "ddp_positives_worker.py"


def run_worker(processes: int, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    res = subprocess.run([*cmd, str(WORKER), str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(out.read_text())


def test_two_cpu_ranks_train_as_one_process_with_the_global_batch(tmp_path: Path) -> None:
    one = run_worker(1, tmp_path / "one.json")
    two = run_worker(2, tmp_path / "two.json")
    assert (one["world_size"], two["world_size"]) == (1, 2)
    # the EMA of positive points: init 50, momentum 0.9, over the positives of all 4 videos
    assert two["loss_normalizer"] == pytest.approx(one["loss_normalizer"], rel=1e-12)
    assert one["loss_normalizer"] != 50.0
    for key in ("loss", "cls_loss", "reg_loss"):
        assert two[key] == pytest.approx(one[key], rel=1e-5), key
    for name, values in one["params"].items():  # the same step: DDP's averaged gradients equal one process's
        assert two["params"][name] == pytest.approx(values, rel=1e-4, abs=1e-6), name
