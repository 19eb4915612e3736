"""Soft-NMS post-processing on CPU: tal.cuda_ops.batched_nms vs a single-threaded O(N^2) C++ loop.

Inputs are shaped like ActionFormer's THUMOS14 candidates (pre_nms_topk = 2,000
segments on a 2,304-step feature grid, widths 1..400 steps, scores u**3) with
20 classes drawn from a Zipf(1) distribution (a few dominant classes, as in a
THUMOS video); the 20,000-candidate case uses the same distribution. Settings
are THUMOS14's test_cfg: Gaussian soft-NMS, sigma 0.5, min_score 0.001,
max_seg_num 200, multiclass, voting_thresh 0.7 (ActionFormer applies voting only
to class-agnostic NMS, so the class-agnostic case with voting is timed as well).

Baseline: the straightforward single-threaded loop ActionFormer-style code runs
(per class: scan for the maximum, swap, decay every later candidate with expf,
drop below min_score), compiled here with torch.utils.cpp_extension.load_inline.
Also timed: the vectorized pure-torch reference (tal.cuda_ops' reference backend).
All outputs are checked equal before timing. Run: python benchmarks/cuda_ops_nms.py
"""

from __future__ import annotations

import argparse

import torch
from cuda_ops_common import median_ms, thumos_like
from torch.utils.cpp_extension import load_inline

import tal.cuda_ops as ops
from tal.cuda_ops import _backend

BASELINE_SRC = r"""
#include <torch/extension.h>
#include <algorithm>
#include <cmath>
#include <vector>

// Single-threaded O(N^2) soft-NMS per class, then concatenation in class order.
// segs (N, 2) float32, scores (N,) float32, labels (N,) int64, all contiguous.
std::vector<torch::Tensor> naive_soft_nms(torch::Tensor segs, torch::Tensor scores, torch::Tensor labels,
                                          double sigma_d, double min_score_d, int64_t max_num) {
  const float sigma = static_cast<float>(sigma_d), min_score = static_cast<float>(min_score_d);
  const int64_t n = segs.size(0);
  const float* s = segs.data_ptr<float>();
  const float* c = scores.data_ptr<float>();
  const int64_t* l = labels.data_ptr<int64_t>();
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return l[a] < l[b]; });
  std::vector<int64_t> out_idx;
  std::vector<float> out_sc;
  int64_t g0 = 0;
  while (g0 < n) {
    int64_t g1 = g0;
    while (g1 < n && l[order[g1]] == l[order[g0]]) ++g1;
    int64_t m = g1 - g0;
    std::vector<float> x1(m), x2(m), ar(m), sc(m);
    std::vector<int64_t> id(m);
    for (int64_t k = 0; k < m; ++k) {
      int64_t o = order[g0 + k];
      x1[k] = s[2 * o]; x2[k] = s[2 * o + 1]; ar[k] = (x2[k] - x1[k]) + 1e-6f; sc[k] = c[o]; id[k] = o;
    }
    int64_t kept = 0;
    for (int64_t i = 0; i < m; ++i) {
      int64_t mp = i;
      for (int64_t p = i + 1; p < m; ++p) if (sc[mp] < sc[p]) mp = p;
      std::swap(x1[i], x1[mp]); std::swap(x2[i], x2[mp]); std::swap(ar[i], ar[mp]);
      std::swap(sc[i], sc[mp]); std::swap(id[i], id[mp]);
      if (max_num <= 0 || kept < max_num) { out_idx.push_back(id[i]); out_sc.push_back(sc[i]); ++kept; }
      for (int64_t p = i + 1; p < m; ++p) {
        float inter = std::max(0.f, std::min(x2[i], x2[p]) - std::max(x1[i], x1[p]));
        float den = ar[i] + ar[p] - inter;
        float ovr = den > 0 ? inter / den : 0.f;
        sc[p] *= std::exp(-(ovr * ovr) / sigma);
        if (sc[p] < min_score) {
          x1[p] = x1[m - 1]; x2[p] = x2[m - 1]; ar[p] = ar[m - 1]; sc[p] = sc[m - 1]; id[p] = id[m - 1];
          --m; --p;
        }
      }
    }
    g0 = g1;
  }
  auto idx = torch::tensor(out_idx, torch::kInt64);
  auto sct = torch::tensor(out_sc, torch::kFloat32);
  return {idx, sct};
}
"""


#: THUMOS14's test_cfg (Gaussian soft-NMS; the method code 2 is what batched_nms passes for "gaussian").
CFG = dict(iou_threshold=0.1, min_score=0.001, max_seg_num=200, use_soft_nms=True, sigma=0.5, voting_thresh=0.7)


def reference_batched_nms(*args, **kwargs):
    """batched_nms on the pure-torch reference primitives (what runs without the compiled library)."""
    return _backend.bound_kernel("batched_nms", "reference")(*args, **kwargs)


def compile_baseline():
    """The single-threaded C++ loop, compiled here with load_inline."""
    print("compiling the single-threaded C++ baseline (load_inline) ...", flush=True)
    return load_inline(
        "tal_bench_naive_soft_nms", cpp_sources=BASELINE_SRC, functions=["naive_soft_nms"], extra_cflags=["-O3"]
    )


def baseline_batched_nms(baseline, segs, scores, labels):
    """Multiclass soft-NMS with the C++ loop, then the final sort and cut of batched_nms."""
    idx, sc = baseline.naive_soft_nms(segs, scores, labels, CFG["sigma"], CFG["min_score"], CFG["max_seg_num"])
    order = torch.sort(sc, descending=True).indices[: CFG["max_seg_num"]]
    return segs[idx[order]], sc[order], labels[idx[order]]


def compare_multiclass(baseline, n: int, repeats: int, name: str = "ext") -> str:
    """Check that the three variants agree on ``n`` THUMOS-like candidates, time them, return the result line."""
    segs, scores, labels = thumos_like(n, seed=n)
    ours = ops.batched_nms(segs, scores, labels, multiclass=True, **CFG)
    base = baseline_batched_nms(baseline, segs, scores, labels)
    assert all(torch.equal(a, b) for a, b in zip(ours, base, strict=True)), "baseline and kernel disagree"
    ref = reference_batched_nms(segs, scores, labels, multiclass=True, method=2, **CFG)
    assert torch.equal(ref[2], ours[2]) and torch.allclose(ref[1], ours[1], rtol=1e-6, atol=1e-7)
    reps = repeats if n <= 2000 else max(3, repeats // 6)
    t_ext = median_ms(lambda: ops.batched_nms(segs, scores, labels, multiclass=True, **CFG), reps)
    t_base = median_ms(lambda: baseline_batched_nms(baseline, segs, scores, labels), reps)
    t_ref = median_ms(
        lambda: reference_batched_nms(segs, scores, labels, multiclass=True, method=2, **CFG), 2 if n > 2000 else 5
    )
    biggest = int(torch.bincount(labels).max())
    return (
        f"soft-NMS {n}x20 (multiclass, Gaussian; largest class {biggest}): {name} {t_ext:.2f} ms, "
        f"single-threaded C++ O(N^2) {t_base:.2f} ms (ratio {t_base / t_ext:.1f}x), "
        f"torch reference {t_ref:.1f} ms (ratio {t_ref / t_ext:.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    info = ops.backend_info()["batched_nms"]["cpu"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batched_nms on CPU: {info.impl}")
    if info.impl != "cpu-ext":
        print("the compiled kernels are not loaded; nothing to compare (" + info.reason + ")")
        return
    baseline = compile_baseline()
    for n in (2000, 20000):
        print(compare_multiclass(baseline, n, args.repeats), flush=True)

    segs, scores, labels = thumos_like(2000, seed=2000)
    t_ext = median_ms(lambda: ops.batched_nms(segs, scores, labels, multiclass=False, **CFG), args.repeats)
    t_ref = median_ms(lambda: reference_batched_nms(segs, scores, labels, multiclass=False, method=2, **CFG), 3)
    print(
        f"soft-NMS 2000 class-agnostic + voting 0.7: ext {t_ext:.2f} ms, torch reference {t_ref:.1f} ms "
        f"(ratio {t_ref / t_ext:.0f}x)"
    )


if __name__ == "__main__":
    main()
