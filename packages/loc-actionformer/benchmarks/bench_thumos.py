"""Time the full THUMOS14 model on CPU: eval forward at T=2304 (blocked SDPA vs band-mask attention) and train step.

Usage: ``python packages/loc-actionformer/benchmarks/bench_thumos.py [--repeats 5] [--threads 2]``.
NMS is excluded (``nms_method="none"``): it belongs to tal-cuda-ops and is benchmarked there.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tal.loc_actionformer import ActionFormer, load_official_config

THUMOS_I3D = {
    "dataset": {"num_classes": 20, "input_dim": 2048, "feat_stride": 4, "num_frames": 16, "max_seq_len": 2304},
    "model": {"fpn_type": "identity", "max_buffer_len_factor": 6.0, "n_mha_win_size": 19},
    "train_cfg": {"init_loss_norm": 100, "clip_grad_l2norm": 1.0},
    "test_cfg": {"voting_thresh": 0.7, "pre_nms_topk": 2000, "max_seg_num": 200, "min_score": 0.001},
}


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-train", action="store_true", help="skip the training-step timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ActionFormer(load_official_config(THUMOS_I3D))
    model.test_cfg.nms_method = "none"
    batch = {
        "features": [torch.randn(2048, 2304)],
        "fps": [30.0],
        "feat_stride": [4],
        "num_frames": [16],
        "duration": [310.0],
    }
    model.eval()
    # the two attention paths are interleaved so that load from other processes hits both alike
    times: dict[str, list[float]] = {"blocked_sdpa": [], "band_mask": []}
    with torch.inference_mode():
        for rep in range(args.repeats + 1):
            for impl in times:
                model.set_attention_impl(impl)
                t0 = time.perf_counter()
                model(batch)
                if rep > 0:  # the first round is warm-up
                    times[impl].append(time.perf_counter() - t0)
    for impl, ts in times.items():
        print(f"eval forward T=2304 B=1 [{impl:12s}] median {statistics.median(ts):.3f} s  best {min(ts):.3f} s")

    if args.no_train:
        return
    model.set_attention_impl("blocked_sdpa")
    model.train()
    train_batch = {"features": [torch.randn(2048, 2304)], "segments": [torch.tensor([[100.0, 180.0]])], "labels": [[3]]}

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(train_batch)["loss"].backward()

    med, best = timed(step, max(1, args.repeats // 2))
    print(f"train fwd+bwd T=2304 B=1 [blocked_sdpa] median {med:.3f} s  best {best:.3f} s")


if __name__ == "__main__":
    main()
