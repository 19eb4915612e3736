"""DiffAct + TST inference on one long Breakfast video on the CPU: tal's model against a plain fp32 eager run.

Model: the ``seg-tst/breakfast`` preset (DiffAct 12x256 encoder, 8x128 decoder, 25 DDIM steps; TST with
768-d features, inner_dim 128), random weights (seeded), I3D-sized features ``(2048, T)``, T = 10,000.

* ``baseline``: the same weights computed the plain way, as the release does: the encoder runs once for
  TST's features and again inside sampling, its local attention gathers an index table, every DDIM step
  projects the concatenated ``[x, condition]``, and TST builds its segments and masks with Python loops
  (``packages/seg-tst/tests/oracles``).
* ``fast``: ``BackboneWithTST`` in eval mode under ``torch.inference_mode`` (the encoder once, the
  condition half of the decoder's projections once for all steps, strided-window attention, norms folded
  into the FFN, vectorized TST).
* ``fast-bf16``: ``fast`` under ``torch.autocast("cpu", torch.bfloat16)``; its labels are compared
  with ``fast``'s.

Each configuration runs in a fresh process (``--child``) that reports its time, its peak RSS
(``VmHWM``) and its RSS before inference, and saves its labels; the labels are compared. Usage::

    python benchmarks/seg_tst_inference.py [--frames 10000] [--threads 2] [--no-bf16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parents[1] / "packages" / "seg-tst" / "tests"


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build_model():
    from tal.seg_tst import BackboneWithTST, DiffAct, DiffActAdapter, TSTRefiner

    torch.manual_seed(0)
    model = BackboneWithTST(
        DiffActAdapter(DiffAct.from_preset("breakfast", 48), eval_seed=666),
        TSTRefiner(n_classes=48, feat_dim=768, inner_dim=128),
    )
    return model.eval()


def child(config: str, frames: int, threads: int, out: Path) -> None:
    torch.set_num_threads(threads)
    model = build_model()
    x = torch.randn(1, 2048, frames, generator=torch.Generator().manual_seed(1))
    rss_before = status_mb("VmRSS")
    t0 = time.perf_counter()
    if config == "baseline":
        sys.path.insert(0, str(TESTS))
        from oracles import release_diffact, release_tst

        diffact = model.adapter.backbone
        with torch.no_grad():
            _, feats = release_diffact.encoder_forward(diffact, x)  # TST's features (the adapter's encoder call)
            probs = release_diffact.ddim_sample(diffact, x, seed=666)  # encodes again, as ddim_sample does
            cls, _ = release_tst.refiner_forward_loop(model.refiner, feats, probs)
            backbone = probs[0].argmax(0)
            refined = release_tst.hardmax_loop(cls, backbone.tolist())
    else:
        ctx = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if config == "fast-bf16"
            else torch.autocast("cpu", enabled=False)
        )
        with torch.inference_mode(), ctx:
            res, _ = model.refine(x)
            backbone, refined = res.action_idx, res.hardmax_labels()
    seconds = time.perf_counter() - t0
    torch.save({"backbone": backbone.cpu(), "refined": refined.cpu()}, out / f"{config}.pt")
    report = {"seconds": seconds, "peak_mb": status_mb("VmHWM"), "rss_before_mb": rss_before}
    (out / f"{config}.json").write_text(json.dumps(report))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.frames, args.threads, Path(args.out))
        return
    configs = ["fast", "baseline"] + ([] if args.no_bf16 else ["fast-bf16"])
    with tempfile.TemporaryDirectory() as tmp:
        reports, labels = {}, {}
        for config in configs:
            cmd = [sys.executable, __file__, "--child", config, "--frames", str(args.frames)]
            subprocess.run([*cmd, "--threads", str(args.threads), "--out", tmp], check=True)
            reports[config] = json.loads((Path(tmp) / f"{config}.json").read_text())
            labels[config] = torch.load(Path(tmp) / f"{config}.pt", weights_only=True)
    fast, base = reports["fast"], reports["baseline"]
    agree = {k: float((labels["fast"][k] == labels["baseline"][k]).float().mean()) for k in ("backbone", "refined")}
    print(
        f"DiffAct+TST breakfast T={args.frames} (25 DDIM steps, {args.threads} threads): "
        f"tal {fast['seconds']:.1f} s vs plain fp32 eager {base['seconds']:.1f} s: "
        f"{base['seconds'] / fast['seconds']:.2f}x; "
        f"peak RSS {fast['peak_mb']:.0f} MB vs {base['peak_mb']:.0f} MB ({fast['peak_mb'] / base['peak_mb']:.2f}x), "
        f"added by inference {fast['peak_mb'] - fast['rss_before_mb']:.0f} MB "
        f"vs {base['peak_mb'] - base['rss_before_mb']:.0f} MB; "
        f"same labels as the baseline: backbone {100 * agree['backbone']:.2f}%, refined {100 * agree['refined']:.2f}%"
    )
    if "fast-bf16" in reports:
        bf = reports["fast-bf16"]
        same = {k: float((labels["fast-bf16"][k] == labels["fast"][k]).float().mean()) for k in ("backbone", "refined")}
        print(
            f"  bf16 autocast: {bf['seconds']:.1f} s ({base['seconds'] / bf['seconds']:.2f}x the baseline), "
            f"peak RSS {bf['peak_mb']:.0f} MB; labels equal to fp32: backbone {100 * same['backbone']:.2f}%, "
            f"refined {100 * same['refined']:.2f}%"
        )


if __name__ == "__main__":
    main()
