// Helpers shared by the torch bindings in ops/: input checks and parallel loops
// over torch's intra-op thread pool, all through torch's stable ABI
// (torch/csrc/stable, libtorch's C shim). The library links against no C++
// symbol of libtorch, so one build loads into every torch release at or above
// TORCH_TARGET_VERSION (set by setup.py / the JIT builder).
//
// The ops live in the private namespace `tal_ops_ext`; the public ops
// (`tal_ops::*`, defined in Python with torch.library) call them for CPU
// tensors after validating and normalising their inputs (contiguous, float32 or
// float64). The checks here are a second line of defence.
#pragma once

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <numeric>
#include <vector>

namespace tal_ops_ext {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

inline void check_cpu_contig(const Tensor& t, const char* name) {
  STD_TORCH_CHECK(t.is_cpu(), name, " must be a CPU tensor");
  STD_TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

inline void check_float(const Tensor& t, const char* name) {
  const auto st = t.scalar_type();
  STD_TORCH_CHECK(st == ScalarType::Float || st == ScalarType::Double, name, " must be float32 or float64");
}

inline void check_segments(const Tensor& t, const char* name) {
  check_cpu_contig(t, name);
  check_float(t, name);
  STD_TORCH_CHECK(t.dim() == 2 && t.size(1) == 2, name, " must have shape (N, 2)");
}

// Calls f(float{}) or f(double{}) for a float32 / float64 scalar type.
template <class F>
void dispatch_float(ScalarType st, const F& f) {
  if (st == ScalarType::Float)
    f(float{});
  else
    f(double{});
}

// Runs fn(begin, end) over [0, n) on torch's intra-op thread pool.
template <class F>
void parallel_rows(int64_t n, int64_t grain, const F& fn) {
  if (n <= 0) return;
  if (n <= grain) {
    fn(int64_t(0), n);
    return;
  }
  torch::stable::parallel_for(0, n, grain, fn);
}

// Runs fn(g, worker) for every g in [0, num_groups), largest groups first, with
// dynamic scheduling over torch's thread pool (groups have very uneven costs).
template <class F>
void parallel_groups(const std::vector<int64_t>& cost, const F& fn) {
  const int64_t G = static_cast<int64_t>(cost.size());
  if (G == 0) return;
  std::vector<int64_t> order(G);
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cost[a] > cost[b]; });
  int64_t total = 0;
  for (auto c : cost) total += c;
  const int64_t threads = static_cast<int64_t>(torch::stable::get_num_threads());
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, G));
  // Below ~4M pair updates one thread wins: a parallel region costs a wake-up and
  // a barrier, and on a busy machine the barrier can wait for a descheduled
  // worker for a whole time slice (benchmarks/cuda_ops_nms.py).
  if (workers == 1 || total < (int64_t(1) << 22)) {
    for (int64_t k = 0; k < G; ++k) fn(order[k], int64_t(0));
    return;
  }
  std::atomic<int64_t> next{0};
  torch::stable::parallel_for(0, workers, 1, [&](int64_t wb, int64_t we) {
    for (int64_t w = wb; w < we; ++w) {
      for (int64_t k = next.fetch_add(1); k < G; k = next.fetch_add(1)) fn(order[k], w);
    }
  });
}

// Group boundaries (G + 1,) int64 on the CPU, from 0 to n, non-decreasing.
inline std::vector<int64_t> read_offsets(const Tensor& offsets, int64_t n) {
  check_cpu_contig(offsets, "offsets");
  STD_TORCH_CHECK(offsets.scalar_type() == ScalarType::Long && offsets.dim() == 1 && offsets.size(0) >= 1,
                  "offsets must be a 1-D int64 tensor");
  const int64_t* o = offsets.const_data_ptr<int64_t>();
  std::vector<int64_t> off(o, o + offsets.size(0));
  STD_TORCH_CHECK(off.front() == 0 && off.back() == n, "offsets must start at 0 and end at the number of items");
  for (size_t g = 1; g < off.size(); ++g) STD_TORCH_CHECK(off[g] >= off[g - 1], "offsets must be non-decreasing");
  return off;
}

// Cost of each group for parallel_groups: the number of candidate pairs.
inline std::vector<int64_t> pair_costs(const std::vector<int64_t>& off) {
  std::vector<int64_t> cost(off.size() - 1);
  for (size_t g = 0; g + 1 < off.size(); ++g) cost[g] = (off[g + 1] - off[g]) * (off[g + 1] - off[g]);
  return cost;
}

}  // namespace tal_ops_ext
