"""GPU benchmarks of tal.cuda_ops (Triton kernels). Exits cleanly when no CUDA device is present.

1. batched soft-NMS of 100,000 segments over 200 classes: Triton on the GPU vs the C++ CPU extension
   (outputs checked equal first);
2. segment_iou 8,192 x 8,192 float32 vs the device's write roofline measured in the same run
   (filling a fresh 8,192 x 8,192 float32 tensor on the device);
3. graph_aggregate forward+backward at CTR-GCN shapes vs torch.einsum, in float32 and bfloat16.

Run: python benchmarks/cuda_ops_gpu.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import sys

import torch
from cuda_ops_common import median_ms

import tal.cuda_ops as ops


def cuda_time(fn, repeats: int) -> float:
    """Median milliseconds per call, measured with CUDA events (after warm-up/compilation)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def candidates(n: int, num_classes: int, seed: int = 0, length: float = 20000.0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(n, generator=g) * length
    widths = torch.exp(torch.rand(n, generator=g) * 6.0)
    segs = torch.stack([centers - widths / 2, centers + widths / 2], 1).clamp(0, length)
    return segs.float(), (torch.rand(n, generator=g) ** 3).float(), torch.randint(0, num_classes, (n,), generator=g)


def bench_nms(repeats: int) -> None:
    segs, scores, labels = candidates(100_000, 200)
    cfg = dict(iou_threshold=0.1, min_score=0.001, max_seg_num=2000, use_soft_nms=True, multiclass=True, sigma=0.5)
    dev = torch.device("cuda")
    gs, gc, gl = segs.to(dev), scores.to(dev), labels.to(dev)
    out_gpu = ops.batched_nms(gs, gc, gl, **cfg)
    out_cpu = ops.batched_nms(segs, scores, labels, **cfg)
    assert out_gpu[2].cpu().tolist() == out_cpu[2].tolist(), "GPU and CPU kernels disagree"
    t_gpu = cuda_time(lambda: ops.batched_nms(gs, gc, gl, **cfg), repeats)
    t_cpu = median_ms(lambda: ops.batched_nms(segs, scores, labels, **cfg), max(3, repeats // 4))
    print(
        f"batched soft-NMS 100000 segments / 200 classes: GPU ({ops.backend_info()['batched_nms']['cuda'].impl}) "
        f"{t_gpu:.2f} ms, CPU ({ops.backend_info()['batched_nms']['cpu'].impl}) {t_cpu:.2f} ms, "
        f"ratio {t_cpu / t_gpu:.1f}x"
    )


def bench_iou(repeats: int, n: int = 8192) -> None:
    dev = torch.device("cuda")
    a, _, _ = candidates(n, 1, seed=1)
    b, _, _ = candidates(n, 1, seed=2)
    a, b = a.to(dev), b.to(dev)
    t_fill = cuda_time(lambda: torch.empty(n, n, device=dev).fill_(0.5), repeats)
    t_op = cuda_time(lambda: ops.segment_iou(a, b), repeats)
    gbytes = n * n * 4 / 1e9
    print(
        f"segment_iou {n}x{n} float32 on GPU: op {t_op:.3f} ms ({gbytes / (t_op / 1e3):.0f} GB/s written), "
        f"fill roofline {t_fill:.3f} ms ({gbytes / (t_fill / 1e3):.0f} GB/s), op/roofline {t_op / t_fill:.2f}x"
    )


def bench_graph(repeats: int) -> None:
    dev = torch.device("cuda")
    n, k, v = 16, 3, 25
    for dtype in (torch.float32, torch.bfloat16):
        for c, t in ((64, 64), (128, 32), (256, 16)):
            x = torch.randn(n, k, c, t, v, device=dev, dtype=dtype)
            a = torch.randn(n, k, c, v, v, device=dev, dtype=dtype)
            g = torch.randn(n, c, t, v, device=dev, dtype=dtype)

            def run_einsum(x=x, a=a, g=g) -> None:
                xx, aa = x.detach().requires_grad_(), a.detach().requires_grad_()
                torch.einsum("nkcuv,nkctv->nctu", aa, xx).backward(g)

            def run_op(x=x, a=a, g=g) -> None:
                xx, aa = x.detach().requires_grad_(), a.detach().requires_grad_()
                ops.graph_aggregate(xx, aa, sum_subsets=True).backward(g)

            t_e = cuda_time(run_einsum, repeats)
            t_o = cuda_time(run_op, repeats)
            print(
                f"graph_aggregate {str(dtype).split('.')[-1]} N={n} K={k} C={c} T={t} V={v} fwd+bwd: "
                f"op {t_o:.3f} ms, einsum {t_e:.3f} ms, einsum/op {t_e / t_o:.2f}x"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: the GPU benchmarks did not run (nothing measured)")
        return 0
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name()}")
    print(ops.format_backend_info())
    bench_nms(args.repeats)
    bench_iou(args.repeats)
    bench_graph(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
