"""ActionFormer on THUMOS14 shapes on the CPU: the fast configuration against a plain one.

Baseline ("plain fp32 eager"): explicit band-mask attention, ``torch.no_grad``, and post-processing
written as Python loops (per-level decoding, soft-NMS one selection at a time, as the release's C++
loop does it). Fast: blocked ``scaled_dot_product_attention``, ``torch.inference_mode``, the
vectorised decoding of :class:`tal.loc_actionformer.ActionFormer` and ``tal.cuda_ops.batched_nms``
(its C++ kernel when compiled; the backend is printed). Same weights (seeded), same features.

- inference: one video, T=2304, I3D 2048-d, the full ``thumos_i3d`` model, post-processing
  included; every measurement runs in a fresh process (``--child``) that reports its time (warm
  median of ``--repeats``), its peak RSS (``VmHWM``) and the RSS just before inference, and saves its
  detections, which are compared between the two configurations.
- training: one optimizer step (forward, backward, clipping, AdamW) on a batch of 2 videos of 2304
  steps (the release's batch size), warm median of ``--repeats``.

Runs of the two configurations alternate (``--rounds``) so that load from other processes hits both
alike; medians are reported. Usage::

    python benchmarks/loc_actionformer_thumos_cpu.py [--rounds 3] [--repeats 3] [--threads 2] [--no-train]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

THUMOS = "thumos_i3d"
T = 2304
CONFIGS = ("baseline", "fast")


# the plain loops are the package's test oracles (packages/loc-actionformer/tests/oracles, not shipped)
ORACLES = Path(__file__).resolve().parents[1] / "packages" / "loc-actionformer" / "tests"


def loop_postprocess(*args: Any) -> Any:
    """Decoding and multiclass soft-NMS as plain Python loops (the oracle of the package's tests)."""
    sys.path.insert(0, str(ORACLES))
    from oracles.postprocess_loops import loop_postprocess as oracle

    return oracle(*args)


# ----------------------------------------------------------------------------- children
def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(config: str) -> Any:
    from tal.loc_actionformer import ActionFormer, ActionFormerConfig
    from tal.loc_actionformer.release.presets import preset

    cfg = preset(THUMOS)["model"]
    cfg.pop("name")

    torch.manual_seed(0)
    model = ActionFormer(ActionFormerConfig(**cfg, attn_impl="band_mask" if config == "baseline" else "blocked_sdpa"))
    return model


def child_infer(config: str, repeats: int, out: Path) -> dict[str, Any]:
    model = build(config).eval()
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(2048, T, generator=gen)
    meta = {"fps": 30.0, "feat_stride": 4.0, "num_frames": 16.0, "duration": (T - 1) * 4 / 30 + 16 / 30}
    batch = {"video_ids": ["video"], "features": [feats], **{k: [v] for k, v in meta.items()}}
    if config == "fast":  # load tal.cuda_ops and its C++ kernels as a program would at start-up
        from tal.cuda_ops import batched_nms

        batched_nms(torch.tensor([[0.0, 1.0]]), torch.tensor([0.5]), torch.tensor([0]), 0.1, 0.001, 1)
    rss_before = status_mb("VmRSS")

    def run() -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], float]:
        """Detections and the time spent before post-processing (network, and for fast, decoding)."""
        t0 = time.perf_counter()
        if config == "baseline":
            with torch.no_grad():
                inputs, masks = model.preprocess([feats])
                outputs = model.forward_features(inputs, masks)
                t_net = time.perf_counter() - t0
                return loop_postprocess(outputs, model.test_cfg, 30.0, 4.0, 16.0, meta["duration"]), t_net
        with torch.inference_mode():
            cands = model.detect([feats])
            t_net = time.perf_counter() - t0
            (d,) = model.postprocess(cands, batch)
        return (d.segments, d.scores, d.labels), t_net

    times, nets = [], []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        dets, t_net = run()
        times.append(time.perf_counter() - t0)
        nets.append(t_net)
    torch.save({"segments": dets[0], "scores": dets[1], "labels": dets[2]}, out)
    return {
        "cold_s": times[0],
        "warm_s": statistics.median(times[1:]),
        "net_s": statistics.median(nets[1:]),
        "post_s": statistics.median(t - n for t, n in zip(times[1:], nets[1:], strict=True)),
        "peak_mb": status_mb("VmHWM"),
        "rss_before_mb": rss_before,
    }


def child_train(config: str, repeats: int) -> dict[str, Any]:
    model = build(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    gen = torch.Generator().manual_seed(1)
    batch = {
        "features": [torch.randn(2048, T, generator=gen) for _ in range(2)],
        "segments": [torch.tensor([[100.0, 180.0], [900.0, 960.0]]), torch.tensor([[40.0, 400.0]])],
        "labels": [torch.tensor([3, 7]), torch.tensor([11])],
    }
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        model(batch)["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    return {"warm_s": statistics.median(times[1:])}


def spawn(args: list[str]) -> dict[str, Any]:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def compare(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> str:
    if len(a["scores"]) != len(b["scores"]):
        return f"DIFFERENT: {len(a['scores'])} vs {len(b['scores'])} detections"
    same_labels = bool(torch.equal(a["labels"], b["labels"]))
    d_seg = float((a["segments"].double() - b["segments"].double()).abs().max()) if len(a["scores"]) else 0.0
    d_sc = float((a["scores"].double() - b["scores"].double()).abs().max()) if len(a["scores"]) else 0.0
    ok = same_labels and d_seg < 1e-3 and d_sc < 1e-5
    verdict = "identical" if ok else "DIFFERENT"
    return (
        f"{verdict} detections: {len(a['scores'])} each, labels {'equal' if same_labels else 'differ'} in order, "
        f"max |delta| segment {d_seg:.2e} s, score {d_sc:.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating fresh-process runs per configuration")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats inside each run (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--child", choices=("infer", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child == "infer":
        print(json.dumps(child_infer(args.config, args.repeats, args.out)))
        return
    if args.child == "train":
        print(json.dumps(child_train(args.config, args.repeats)))
        return

    import tal.cuda_ops

    nms_backend = tal.cuda_ops.backend_info()["batched_nms"]["cpu"]
    print(f"torch {torch.__version__}, {args.threads} threads; batched_nms on cpu: {nms_backend.impl}")
    common = ["--repeats", str(args.repeats), "--threads", str(args.threads)]
    res: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for c in CONFIGS:
                out = Path(tmp) / f"{c}.pt"
                res[c].append(spawn(["--child", "infer", "--config", c, "--out", str(out), *common]))
        dets = {c: torch.load(Path(tmp) / f"{c}.pt", weights_only=True) for c in CONFIGS}

    def med(c: str, key: str) -> float:
        return statistics.median(r[key] for r in res[c])

    for c in CONFIGS:
        print(
            f"infer T={T} [{c:8s}] warm {med(c, 'warm_s'):.3f} s (network {med(c, 'net_s'):.3f} s + post-processing "
            f"{med(c, 'post_s'):.3f} s; cold {med(c, 'cold_s'):.3f} s), "
            f"peak RSS {med(c, 'peak_mb'):.0f} MB, RSS before inference {med(c, 'rss_before_mb'):.0f} MB"
        )
    for c in CONFIGS:
        print(f"  {c:8s} warm times of the runs: " + ", ".join(f"{r['warm_s']:.3f}" for r in res[c]))
    speed = med("baseline", "warm_s") / med("fast", "warm_s")
    peak = med("fast", "peak_mb") / med("baseline", "peak_mb")
    inc = (med("fast", "peak_mb") - med("fast", "rss_before_mb")) / (
        med("baseline", "peak_mb") - med("baseline", "rss_before_mb")
    )
    print(f"inference speed-up (warm, incl. post-processing): {speed:.2f}x")
    floor = med("baseline", "rss_before_mb") / med("baseline", "peak_mb")
    print(
        f"inference peak memory fast/baseline: {inc:.2f}x of the memory the inference adds (peak RSS above the RSS "
        f"with torch, the weights and the features loaded); {peak:.2f}x of the whole process's peak RSS (that "
        f"loaded state alone is {floor:.2f}x of the baseline's peak)"
    )
    print(compare(dets["baseline"], dets["fast"]))
    if args.no_train:
        return
    train: dict[str, list[float]] = {c: [] for c in CONFIGS}
    for _ in range(args.rounds):
        for c in CONFIGS:
            train[c].append(spawn(["--child", "train", "--config", c, *common])["warm_s"])
    for c in CONFIGS:
        runs = ", ".join(f"{t:.3f}" for t in train[c])
        print(f"train step B=2 T={T} [{c:8s}] {statistics.median(train[c]):.3f} s (runs: {runs})")
    ratio = statistics.median(train["baseline"]) / statistics.median(train["fast"])
    print(f"training throughput fast/baseline: {ratio:.2f}x")
    if math.isnan(ratio):
        sys.exit(1)


if __name__ == "__main__":
    main()
