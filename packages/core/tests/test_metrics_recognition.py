"""Recognition top-k / class accuracy, and the shared mergeable base (merge, dedup, DDP sync)."""

from __future__ import annotations

import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tal.core.metrics import (
    DetectionMetric,
    RecognitionConfig,
    RecognitionMetric,
    SegmentationMetric,
    evaluate_recognition,
    register,
)
from tal.core.registry import Registry
from tal.core.types import Segments


def test_hand_computed_topk_class_accuracy_confusion():
    scores = np.array(
        [
            [0.7, 0.2, 0.1],  # true 0, predicted 0
            [0.1, 0.3, 0.6],  # true 1, predicted 2, true class 2nd
            [0.5, 0.5, 0.0],  # true 1, tie with class 0: stable order puts 0 first -> predicted 0, rank 1
            [0.2, 0.3, 0.5],  # true 2, predicted 2
        ]
    )
    targets = np.array([0, 1, 1, 2])
    r = evaluate_recognition(scores, targets, top_k=[1, 2, 3])
    assert r.topk == {1: 50.0, 2: 100.0, 3: 100.0}
    assert r.confusion.tolist() == [[1, 0, 0], [1, 0, 1], [0, 0, 1]]
    # per class: 0 -> 1/1, 1 -> 0/2, 2 -> 1/1; mean = (100 + 0 + 100) / 3
    np.testing.assert_allclose(r.per_class, [100.0, 0.0, 100.0])
    assert r.mean_class_accuracy == pytest.approx(200 / 3)
    # a class without samples is NaN and left out of the mean
    r = evaluate_recognition(np.eye(4)[[0, 1]], [0, 1])
    assert math.isnan(r.per_class[3]) and r.mean_class_accuracy == 100.0
    assert math.isnan(evaluate_recognition(np.zeros((0, 3)), []).topk[1])
    with pytest.raises(ValueError, match="NaN"):
        evaluate_recognition([[np.nan, 0.0]], [0])


def test_top1_agrees_with_argmax_on_random_scores():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((500, 7)), 1)  # many ties
    targets = rng.integers(0, 7, 500)
    r = evaluate_recognition(scores, targets, top_k=[1, 3, 7])
    assert r.topk[1] == pytest.approx(100 * np.mean(scores.argmax(1) == targets))
    assert r.topk[7] == 100.0
    order = np.argsort(-scores, axis=1, kind="stable")
    assert r.topk[3] == pytest.approx(100 * np.mean([t in o[:3] for t, o in zip(targets, order, strict=True)]))


def test_metric_object_batches_merge_dedup():
    rng = np.random.default_rng(1)
    scores = torch.as_tensor(rng.random((20, 5)))
    targets = torch.as_tensor(rng.integers(0, 5, 20))
    ids = [f"s{i}" for i in range(20)]
    a, b = RecognitionMetric(top_k=[1, 5]), RecognitionMetric(top_k=[1, 5])
    a.update(scores[:8], targets[:8], ids[:8])
    b.update(list(scores[8:]), [int(t) for t in targets[8:]], ids[8:])
    b.update(scores[:2], targets[:2], ids[:2])  # padded repeats
    a.merge(b)
    out = a.compute()
    expected = evaluate_recognition(scores, targets, [1, 5]).as_dict()
    assert out["top1"] == expected["top1"] and out["top5"] == 100.0
    assert out["mean_class_accuracy"] == pytest.approx(expected["mean_class_accuracy"])
    np.testing.assert_array_equal(out["confusion_matrix"], expected["confusion_matrix"])
    keep_all = RecognitionMetric(deduplicate=False)
    keep_all.merge(a)
    assert keep_all.result().num_samples == 22 and a.result().num_samples == 20
    with pytest.raises(TypeError):
        a.merge(SegmentationMetric(background_ids=[]))


def test_state_dict_round_trip():
    m = RecognitionMetric(top_k=[1])
    m.update(torch.eye(3), torch.arange(3), ["a", "b", "c"])
    fresh = RecognitionMetric(top_k=[1])
    fresh.load_state_dict(m.state_dict())
    assert fresh.compute()["top1"] == 100.0
    with pytest.raises(ValueError, match="cannot merge"):
        RecognitionMetric(top_k=[5]).load_state_dict(m.state_dict())


def test_registered_recognition_metric():
    reg = Registry()
    register(reg)
    metric = reg.build("metrics", RecognitionConfig(top_k=[1, 3]))
    assert isinstance(metric, RecognitionMetric) and metric.top_k == [1, 3]
    with pytest.raises(ValueError):
        RecognitionConfig(top_k=[0])


# ---------------------------------------------------------------------------------------------
# sync() across two gloo ranks: every rank ends up with the union, in rank order
# ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_data(rank: int):
    gen = torch.Generator().manual_seed(rank)
    vids = [f"r{rank}v{i}" for i in range(3)]
    segs = [Segments(torch.tensor([[0.0, 5.0], [10.0, 20.0]]), torch.tensor([0, 1])) for _ in vids]
    preds = [
        Segments(
            torch.rand(4, 1, generator=gen) * 20 + torch.tensor([[0.0, 6.0]]),
            torch.tensor([0, 1, 0, 1]),
            torch.rand(4, generator=gen),
        )
        for _ in vids
    ]
    frames = [torch.randint(0, 3, (30,), generator=gen) for _ in vids]
    return vids, segs, preds, frames


def _metrics():
    return DetectionMetric([0.3, 0.5]), SegmentationMetric(background_ids=[0]), RecognitionMetric(top_k=[1, 2])


def _fill(metrics, rank: int) -> None:
    det, seg, rec = metrics
    vids, segs, preds, frames = _rank_data(rank)
    det.update(preds, segs, vids)
    seg.update([f.roll(1) for f in frames], frames, vids)
    rec.update(torch.stack([f[:3].double() for f in frames]), [int(f[0]) for f in frames], vids)


def _worker(rank: int, world: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        metrics = _metrics()
        _fill(metrics, rank)
        for m in metrics:
            m.sync()
        queue.put((rank, [m.compute() for m in metrics]))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_sync_gathers_every_rank():
    expected = _metrics()
    for rank in range(2):
        _fill(expected, rank)
    want = [m.compute() for m in expected]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for rank in range(2):
        for got, exp in zip(results[rank], want, strict=True):
            for key, value in exp.items():
                if isinstance(value, float):
                    assert got[key] == pytest.approx(value, nan_ok=True), key
