"""Distributed data parallel: 2 CPU ranks (gloo, launched with torchrun) agree with 1 rank."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from test_engine_support import ddp_run

from tal.core.engine.distributed import ShardSampler, init_distributed, resolve_device
from tal.core.errors import ConfigError

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_two_ranks_match_one_rank(tmp_path: Path) -> None:
    # Same global batch: 1 rank x 4 videos vs 2 ranks x 2 videos (8 training videos, 2 steps/epoch).
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        env["MASTER_PORT"],
        str(HERE / "test_engine_support.py"),
        str(two),
        "2",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-4000:]

    ddp_run(one, per_rank_batch=4)  # in this process: no torchrun variables, a single rank

    single = torch.load(one / "rank0.pt", weights_only=True)
    ranks = [torch.load(two / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert single["world_size"] == 1 and [r["world_size"] for r in ranks] == [2, 2]
    assert single["steps"] == ranks[0]["steps"] == ranks[1]["steps"] == 4
    for rank in ranks:
        assert len(rank["grads"]) == len(single["grads"]) == 4
        for step, (g1, g2) in enumerate(zip(single["grads"], rank["grads"], strict=True)):
            for a, b in zip(g1, g2, strict=True):
                torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=f"gradient at step {step}")
        for name, p in single["params"].items():
            torch.testing.assert_close(rank["params"][name], p, rtol=1e-5, atol=1e-6, msg=name)
        assert rank["metrics"] == single["metrics"]
    # the gradients really were all-reduced: both ranks saw identical ones
    for g0, g1 in zip(ranks[0]["grads"], ranks[1]["grads"], strict=True):
        for a, b in zip(g0, g1, strict=True):
            assert torch.equal(a, b)
    assert single["metrics"]["videos"] == 5  # 5 eval videos split 3 + 2, none counted twice
    assert sorted(os.listdir(two / "run")) == ["best.pt", "last.pt", "metrics.csv"]


def test_shard_sampler_covers_every_index_once() -> None:
    shards = [list(ShardSampler(7, r, 3)) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert [len(ShardSampler(7, r, 3)) for r in range(3)] == [3, 2, 2]
    assert sorted(i for s in shards for i in s) == list(range(7))


def test_single_process_context(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)
    assert ctx.device == torch.device("cpu")


def test_device_resolution() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")
