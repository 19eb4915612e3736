// Binding of the CPU kernels to torch through the stable ABI
// (torch/csrc/stable, libtorch's C shim). The library links against no C++
// symbol of libtorch, so one build loads into every torch release at or above
// TORCH_TARGET_VERSION (set by setup.py / the JIT builder to 2.10).
//
// The ops live in the private namespace `tal_ops_ext`; the public ops
// (`tal_ops::*`, defined in Python with torch.library) call them for CPU
// tensors after validating and normalising their inputs (contiguous, float32 or
// float64). The checks below are a second line of defence.
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kernels.h"

// Version of the schemas/semantics below, passed by the build (setup.py or the
// JIT builder) from tal/cuda_ops/_buildcfg.py. The Python loader refuses a
// library whose version differs from the one it expects.
#ifndef TAL_KERNELS_VERSION
#error "TAL_KERNELS_VERSION must be defined by the build (see tal/cuda_ops/_buildcfg.py)"
#endif

using torch::headeronly::ScalarType;
using torch::stable::Tensor;
namespace tk = tal_kernels;

namespace {

void check_cpu_contig(const Tensor& t, const char* name) {
  STD_TORCH_CHECK(t.is_cpu(), name, " must be a CPU tensor");
  STD_TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

void check_float(const Tensor& t, const char* name) {
  const auto st = t.scalar_type();
  STD_TORCH_CHECK(st == ScalarType::Float || st == ScalarType::Double, name, " must be float32 or float64");
}

void check_segments(const Tensor& t, const char* name) {
  check_cpu_contig(t, name);
  check_float(t, name);
  STD_TORCH_CHECK(t.dim() == 2 && t.size(1) == 2, name, " must have shape (N, 2)");
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
  // Below ~4M pair updates (a few ms) one thread wins: a parallel region costs a
  // wake-up and a barrier, and on a busy machine the barrier can wait for a
  // descheduled worker for a whole time slice (measured: 0.6 ms serial vs 8 ms
  // with 2 threads for a THUMOS-sized input on the shared 2-core machine).
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

std::vector<int64_t> read_offsets(const Tensor& offsets, int64_t n) {
  check_cpu_contig(offsets, "offsets");
  STD_TORCH_CHECK(offsets.scalar_type() == ScalarType::Long && offsets.dim() == 1 && offsets.size(0) >= 1,
                  "offsets must be a 1-D int64 tensor");
  const int64_t* o = offsets.const_data_ptr<int64_t>();
  std::vector<int64_t> off(o, o + offsets.size(0));
  STD_TORCH_CHECK(off.front() == 0 && off.back() == n, "offsets must start at 0 and end at the number of items");
  for (size_t g = 1; g < off.size(); ++g) STD_TORCH_CHECK(off[g] >= off[g - 1], "offsets must be non-decreasing");
  return off;
}

// ------------------------------- segment IoU -------------------------------

template <typename T>
void segment_iou_impl(const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = a.size(0), m = b.size(0);
  if (n == 0 || m == 0) return;
  const T* ap = a.const_data_ptr<T>();
  const T* bp = b.const_data_ptr<T>();
  std::vector<T> bs(m), be(m), bl(m);
  for (int64_t j = 0; j < m; ++j) {
    bs[j] = bp[2 * j];
    be[j] = bp[2 * j + 1];
    bl[j] = tk::clamp_len(be[j] - bs[j]);
  }
  T* op = out.mutable_data_ptr<T>();
  // >= 256k IoUs per chunk: smaller parallel regions cost more than they save on a busy machine.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(m, 1));
  parallel_rows(n, grain, [&](int64_t r0, int64_t r1) {
    tk::segment_iou_rows<T>(ap, bs.data(), be.data(), bl.data(), m, op, r0, r1);
  });
}

Tensor segment_iou(Tensor a, Tensor b) {
  check_segments(a, "a");
  check_segments(b, "b");
  STD_TORCH_CHECK(a.scalar_type() == b.scalar_type(), "a and b must have the same dtype");
  Tensor out = torch::stable::new_empty(a, {a.size(0), b.size(0)});
  if (a.scalar_type() == ScalarType::Float)
    segment_iou_impl<float>(a, b, out);
  else
    segment_iou_impl<double>(a, b, out);
  return out;
}

Tensor segment_iou_matched(Tensor a, Tensor b) {
  check_segments(a, "a");
  check_segments(b, "b");
  STD_TORCH_CHECK(a.scalar_type() == b.scalar_type(), "a and b must have the same dtype");
  STD_TORCH_CHECK(a.size(0) == b.size(0), "a and b must have the same number of segments");
  const int64_t n = a.size(0);
  Tensor out = torch::stable::new_empty(a, {n});
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* ap = a.const_data_ptr<T>();
    const T* bp = b.const_data_ptr<T>();
    T* op = out.mutable_data_ptr<T>();
    parallel_rows(n, int64_t(1) << 18, [&](int64_t r0, int64_t r1) { tk::segment_iou_matched_rows<T>(ap, bp, op, r0, r1); });
  };
  if (a.scalar_type() == ScalarType::Float)
    run(float{});
  else
    run(double{});
  return out;
}

// ---------------------------------- NMS ------------------------------------

template <typename T>
std::tuple<Tensor, Tensor, Tensor> soft_nms_impl(const Tensor& segs, const Tensor& scores,
                                                 const std::vector<int64_t>& off, double iou_threshold, double sigma,
                                                 double min_score, int64_t method, int64_t max_num) {
  const int64_t n = segs.size(0);
  const int64_t G = static_cast<int64_t>(off.size()) - 1;
  const T* sp = segs.const_data_ptr<T>();
  const T* cp = scores.const_data_ptr<T>();
  // Selection results are written at the group's own offset, then compacted.
  std::vector<int64_t> ids(n);
  std::vector<T> sel(n);
  std::vector<int64_t> counts(G, 0), cost(G);
  for (int64_t g = 0; g < G; ++g) cost[g] = (off[g + 1] - off[g]) * (off[g + 1] - off[g]);
  const int64_t threads = std::max<int64_t>(1, torch::stable::get_num_threads());
  std::vector<tk::NmsWork<T>> work(threads);
  parallel_groups(cost, [&](int64_t g, int64_t w) {
    const int64_t b = off[g], len = off[g + 1] - off[g];
    int64_t c = tk::soft_nms_group<T>(sp + 2 * b, cp + b, len, T(iou_threshold), T(sigma), T(min_score),
                                      static_cast<int>(method), ids.data() + b, sel.data() + b, work[w]);
    if (max_num > 0) c = std::min(c, max_num);
    for (int64_t k = 0; k < c; ++k) ids[b + k] += b;
    counts[g] = c;
  });
  int64_t total = 0;
  for (auto c : counts) total += c;
  Tensor out_ids = torch::stable::new_empty(scores, {total}, ScalarType::Long);
  Tensor out_sc = torch::stable::new_empty(scores, {total});
  Tensor out_counts = torch::stable::new_empty(scores, {G}, ScalarType::Long);
  int64_t* oi = out_ids.mutable_data_ptr<int64_t>();
  T* os = out_sc.mutable_data_ptr<T>();
  int64_t* oc = out_counts.mutable_data_ptr<int64_t>();
  int64_t pos = 0;
  for (int64_t g = 0; g < G; ++g) {
    std::copy(ids.begin() + off[g], ids.begin() + off[g] + counts[g], oi + pos);
    std::copy(sel.begin() + off[g], sel.begin() + off[g] + counts[g], os + pos);
    oc[g] = counts[g];
    pos += counts[g];
  }
  return std::make_tuple(out_ids, out_sc, out_counts);
}

// Soft-NMS over groups: segs (N, 2) and scores (N,) are sorted by group and
// offsets (G + 1,) delimit the groups. Returns (positions into segs in
// selection order, scores at selection, kept count per group), each group
// capped at max_num when max_num > 0.
std::tuple<Tensor, Tensor, Tensor> soft_nms_grouped(Tensor segs, Tensor scores, Tensor offsets, double iou_threshold,
                                                    double sigma, double min_score, int64_t method, int64_t max_num) {
  check_segments(segs, "segs");
  check_cpu_contig(scores, "scores");
  STD_TORCH_CHECK(scores.scalar_type() == segs.scalar_type(), "segs and scores must have the same dtype");
  STD_TORCH_CHECK(scores.dim() == 1 && scores.size(0) == segs.size(0), "scores must have shape (N,)");
  STD_TORCH_CHECK(method >= 0 && method <= 2, "method must be 0 (hard), 1 (linear) or 2 (gaussian)");
  const auto off = read_offsets(offsets, segs.size(0));
  if (segs.scalar_type() == ScalarType::Float)
    return soft_nms_impl<float>(segs, scores, off, iou_threshold, sigma, min_score, method, max_num);
  return soft_nms_impl<double>(segs, scores, off, iou_threshold, sigma, min_score, method, max_num);
}

// Greedy hard NMS over groups: order (L,) lists indices into segs, group by
// group, each group in visiting order; offsets (G + 1,) delimit the groups.
// Returns a uint8 keep mask aligned with order.
Tensor hard_nms_grouped(Tensor segs, Tensor order, Tensor offsets, double iou_threshold) {
  check_segments(segs, "segs");
  check_cpu_contig(order, "order");
  STD_TORCH_CHECK(order.scalar_type() == ScalarType::Long && order.dim() == 1, "order must be a 1-D int64 tensor");
  const int64_t L = order.size(0), n = segs.size(0);
  const auto off = read_offsets(offsets, L);
  const int64_t* op = order.const_data_ptr<int64_t>();
  for (int64_t k = 0; k < L; ++k) STD_TORCH_CHECK(op[k] >= 0 && op[k] < n, "order holds an index out of range");
  Tensor keep = torch::stable::new_empty(order, {L}, ScalarType::Byte);
  uint8_t* kp = keep.mutable_data_ptr<uint8_t>();
  const int64_t G = static_cast<int64_t>(off.size()) - 1;
  std::vector<int64_t> cost(G);
  for (int64_t g = 0; g < G; ++g) cost[g] = (off[g + 1] - off[g]) * (off[g + 1] - off[g]);
  const int64_t threads = std::max<int64_t>(1, torch::stable::get_num_threads());
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* sp = segs.const_data_ptr<T>();
    std::vector<tk::NmsWork<T>> work(threads);
    parallel_groups(cost, [&](int64_t g, int64_t w) {
      tk::hard_nms_sorted<T>(sp, op + off[g], off[g + 1] - off[g], T(iou_threshold), kp + off[g], work[w]);
    });
  };
  if (segs.scalar_type() == ScalarType::Float)
    run(float{});
  else
    run(double{});
  return keep;
}

Tensor seg_voting(Tensor nms_segs, Tensor segs, Tensor scores, double thr) {
  check_segments(nms_segs, "nms_segs");
  check_segments(segs, "segs");
  check_cpu_contig(scores, "scores");
  STD_TORCH_CHECK(nms_segs.scalar_type() == segs.scalar_type() && scores.scalar_type() == segs.scalar_type(),
                  "nms_segs, segs and scores must have the same dtype");
  STD_TORCH_CHECK(scores.dim() == 1 && scores.size(0) == segs.size(0), "scores must have shape (N,)");
  const int64_t K = nms_segs.size(0), n = segs.size(0);
  Tensor out = torch::stable::new_empty(nms_segs, {K, 2});
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* sp = segs.const_data_ptr<T>();
    std::vector<T> x1(n), x2(n), len(n);
    for (int64_t j = 0; j < n; ++j) {
      x1[j] = sp[2 * j];
      x2[j] = sp[2 * j + 1];
      len[j] = x2[j] - x1[j];
    }
    const T* np_ = nms_segs.const_data_ptr<T>();
    const T* cp = scores.const_data_ptr<T>();
    T* o = out.mutable_data_ptr<T>();
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(n, 1));
    parallel_rows(K, grain, [&](int64_t r0, int64_t r1) {
      tk::seg_voting_rows<T>(np_, x1.data(), x2.data(), len.data(), cp, n, T(thr), o, r0, r1);
    });
  };
  if (segs.scalar_type() == ScalarType::Float)
    run(float{});
  else
    run(double{});
  return out;
}

// ----------------------------- graph aggregation ---------------------------

// Work items are (n, c) slices (or (n, k, c) when subsets are kept apart);
// grain so that one chunk holds ~64k multiply-adds.
int64_t graph_grain(int64_t macs_per_item) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(macs_per_item, 1)); }

template <typename T>
void refined_fwd_impl(const T* x, const T* A, T* out, int64_t N, int64_t K, int64_t C, int64_t Tn, int64_t V,
                      bool sum_k) {
  const int64_t Tp = tk::round_up(Tn, tk::kGemmW);
  const int64_t S = sum_k ? K : 1;
  const int64_t xs = Tn * V, as = V * V;
  const int64_t items = sum_k ? N * C : N * K * C;
  parallel_rows(items, graph_grain(S * Tn * V * V), [&](int64_t i0, int64_t i1) {
    std::vector<T> M(S > 1 ? V * S * V : 0), B(S * V * Tp), oT(V * Tp);
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t n = sum_k ? it / C : it / (K * C);
      const int64_t k0 = sum_k ? 0 : (it / C) % K;
      const int64_t c = it % C;
      const T* m = nullptr;
      for (int64_t s = 0; s < S; ++s) {
        const int64_t slab = (n * K + k0 + s) * C + c;
        tk::transpose_pad(x + slab * xs, Tn, V, B.data() + s * V * Tp, Tp);
        if (S == 1) {
          m = A + slab * as;
        } else {
          for (int64_t u = 0; u < V; ++u) std::memcpy(M.data() + u * S * V + s * V, A + slab * as + u * V, sizeof(T) * V);
        }
      }
      if (S > 1) m = M.data();
      tk::small_gemm(m, S * V, V, S * V, B.data(), Tp, Tp, oT.data(), Tp, false);
      T* o = sum_k ? out + (n * C + c) * xs : out + ((n * K + k0) * C + c) * xs;
      tk::untranspose(oT.data(), V, Tn, Tp, o);
    }
  });
}

template <typename T>
void refined_bwd_impl(const T* g, const T* x, const T* A, T* gx, T* gA, int64_t N, int64_t K, int64_t C, int64_t Tn,
                      int64_t V, bool sum_k) {
  const int64_t Tp = tk::round_up(Tn, tk::kGemmW);
  const int64_t Vp = tk::round_up(V, tk::kGemmW);
  const int64_t xs = Tn * V, as = V * V;
  parallel_rows(N * C, graph_grain(2 * K * Tn * V * V), [&](int64_t i0, int64_t i1) {
    std::vector<T> gT(V * Tp), AT(V * V), oT(V * Tp), xp(Tn * Vp), G(V * Vp);
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t n = it / C, c = it % C;
      if (sum_k) tk::transpose_pad(g + it * xs, Tn, V, gT.data(), Tp);
      for (int64_t k = 0; k < K; ++k) {
        const int64_t slab = (n * K + k) * C + c;
        if (!sum_k) tk::transpose_pad(g + slab * xs, Tn, V, gT.data(), Tp);
        if (gx != nullptr) {  // gx[t, v] = sum_u g[t, u] A[u, v]  <=>  gxT = A^T gT
          tk::transpose_pad(A + slab * as, V, V, AT.data(), V);
          tk::small_gemm(AT.data(), V, V, V, gT.data(), Tp, Tp, oT.data(), Tp, false);
          tk::untranspose(oT.data(), V, Tn, Tp, gx + slab * xs);
        }
        if (gA != nullptr) {  // gA[u, v] = sum_t g[t, u] x[t, v]  <=>  gA = gT x
          tk::copy_pad(x + slab * xs, Tn, V, xp.data(), Vp);
          tk::small_gemm(gT.data(), Tp, V, Tn, xp.data(), Vp, Vp, G.data(), Vp, false);
          for (int64_t u = 0; u < V; ++u) std::memcpy(gA + slab * as + u * V, G.data() + u * Vp, sizeof(T) * V);
        }
      }
    }
  });
}

template <typename T>
void shared_fwd_impl(const T* x, const T* A, T* out, int64_t N, int64_t C, int64_t Tn, int64_t V, int64_t K,
                     bool sum_k) {
  const int64_t Tp = tk::round_up(Tn, tk::kGemmW);
  const int64_t xs = Tn * V, as = V * V;
  const int64_t S = sum_k ? 1 : K;
  std::vector<T> asum;
  if (sum_k) {
    asum.assign(as, T(0));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t q = 0; q < as; ++q) asum[q] += A[k * as + q];
  }
  parallel_rows(N * C, graph_grain(S * Tn * V * V), [&](int64_t i0, int64_t i1) {
    std::vector<T> xT(V * Tp), oT(V * Tp);
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t n = it / C, c = it % C;
      tk::transpose_pad(x + it * xs, Tn, V, xT.data(), Tp);
      for (int64_t s = 0; s < S; ++s) {
        const T* m = sum_k ? asum.data() : A + s * as;
        tk::small_gemm(m, V, V, V, xT.data(), Tp, Tp, oT.data(), Tp, false);
        tk::untranspose(oT.data(), V, Tn, Tp, sum_k ? out + it * xs : out + ((n * K + s) * C + c) * xs);
      }
    }
  });
}

template <typename T>
void shared_bwd_impl(const T* g, const T* x, const T* A, T* gx, T* gA, int64_t N, int64_t C, int64_t Tn, int64_t V,
                     int64_t K, bool sum_k) {
  const int64_t Tp = tk::round_up(Tn, tk::kGemmW);
  const int64_t Vp = tk::round_up(V, tk::kGemmW);
  const int64_t xs = Tn * V, as = V * V;
  const int64_t S = sum_k ? 1 : K;  // distinct gradient slices per (n, c)
  const int64_t items = N * C;
  auto g_slice = [&](int64_t it, int64_t s) {
    const int64_t n = it / C, c = it % C;
    return sum_k ? g + it * xs : g + ((n * K + s) * C + c) * xs;
  };
  if (gx != nullptr) {
    // gx = sum_s g_s A_s  <=>  gxT = [A_0^T | ... | A_{S-1}^T] [gT_0; ...; gT_{S-1}]
    std::vector<T> M(V * S * V, T(0));
    for (int64_t k = 0; k < K; ++k) {
      const int64_t s = sum_k ? 0 : k;
      for (int64_t u = 0; u < V; ++u)
        for (int64_t v = 0; v < V; ++v) M[v * S * V + s * V + u] += A[k * as + u * V + v];
    }
    parallel_rows(items, graph_grain(S * Tn * V * V), [&](int64_t i0, int64_t i1) {
      std::vector<T> B(S * V * Tp), oT(V * Tp);
      for (int64_t it = i0; it < i1; ++it) {
        for (int64_t s = 0; s < S; ++s) tk::transpose_pad(g_slice(it, s), Tn, V, B.data() + s * V * Tp, Tp);
        tk::small_gemm(M.data(), S * V, V, S * V, B.data(), Tp, Tp, oT.data(), Tp, false);
        tk::untranspose(oT.data(), V, Tn, Tp, gx + it * xs);
      }
    });
  }
  if (gA != nullptr) {
    // gA_s = sum over (n, c) of gT_s x: partial sums per chunk, added in chunk order.
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(items, torch::stable::get_num_threads()));
    std::vector<T> partial(chunks * S * V * Vp, T(0));
    parallel_rows(chunks, 1, [&](int64_t c0, int64_t c1) {
      std::vector<T> gT(V * Tp), xp(Tn * Vp);
      for (int64_t ch = c0; ch < c1; ++ch) {
        T* P = partial.data() + ch * S * V * Vp;
        for (int64_t it = items * ch / chunks; it < items * (ch + 1) / chunks; ++it) {
          tk::copy_pad(x + it * xs, Tn, V, xp.data(), Vp);
          for (int64_t s = 0; s < S; ++s) {
            tk::transpose_pad(g_slice(it, s), Tn, V, gT.data(), Tp);
            tk::small_gemm(gT.data(), Tp, V, Tn, xp.data(), Vp, Vp, P + s * V * Vp, Vp, true);
          }
        }
      }
    });
    for (int64_t k = 0; k < K; ++k) {
      const int64_t s = sum_k ? 0 : k;
      for (int64_t u = 0; u < V; ++u)
        for (int64_t v = 0; v < V; ++v) {
          T tot = T(0);
          for (int64_t ch = 0; ch < chunks; ++ch) tot += partial[((ch * S + s) * V + u) * Vp + v];
          gA[k * as + u * V + v] = tot;
        }
    }
  }
}

template <class F>
void dispatch_float(ScalarType st, const F& f) {
  if (st == ScalarType::Float)
    f(float{});
  else
    f(double{});
}

void check_graph(const Tensor& x, const Tensor& A) {
  check_cpu_contig(x, "x");
  check_cpu_contig(A, "A");
  check_float(x, "x");
  STD_TORCH_CHECK(A.scalar_type() == x.scalar_type(), "x and A must have the same dtype");
}

// x (N, K, C, T, V), A (N, K, C, V, V) -> (N, K, C, T, V) or, summed over K, (N, C, T, V).
Tensor graph_refined_fwd(Tensor x, Tensor A, bool sum_subsets) {
  check_graph(x, A);
  STD_TORCH_CHECK(x.dim() == 5 && A.dim() == 5, "x must be (N, K, C, T, V) and A (N, K, C, V, V)");
  const int64_t N = x.size(0), K = x.size(1), C = x.size(2), Tn = x.size(3), V = x.size(4);
  STD_TORCH_CHECK(A.size(0) == N && A.size(1) == K && A.size(2) == C && A.size(3) == V && A.size(4) == V,
                  "A must have shape (N, K, C, V, V) matching x");
  Tensor out = sum_subsets ? torch::stable::new_empty(x, {N, C, Tn, V}) : torch::stable::new_empty(x, {N, K, C, Tn, V});
  if (x.numel() == 0 || out.numel() == 0) {
    if (out.numel() > 0) torch::stable::zero_(out);
    return out;
  }
  dispatch_float(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    refined_fwd_impl<T>(x.const_data_ptr<T>(), A.const_data_ptr<T>(), out.mutable_data_ptr<T>(), N, K, C, Tn, V,
                            sum_subsets);
  });
  return out;
}

std::tuple<Tensor, Tensor> graph_refined_bwd(Tensor grad, Tensor x, Tensor A, bool sum_subsets, bool need_x,
                                             bool need_A) {
  check_graph(x, A);
  check_cpu_contig(grad, "grad");
  STD_TORCH_CHECK(grad.scalar_type() == x.scalar_type(), "grad must have the dtype of x");
  const int64_t N = x.size(0), K = x.size(1), C = x.size(2), Tn = x.size(3), V = x.size(4);
  if (sum_subsets) {
    STD_TORCH_CHECK(grad.dim() == 4 && grad.size(0) == N && grad.size(1) == C && grad.size(2) == Tn &&
                        grad.size(3) == V,
                    "grad must have shape (N, C, T, V)");
  } else {
    STD_TORCH_CHECK(grad.dim() == 5 && grad.numel() == x.numel(), "grad must have the shape of x");
  }
  Tensor gx = need_x ? torch::stable::new_empty(x, {N, K, C, Tn, V}) : torch::stable::new_empty(x, {0});
  Tensor gA = need_A ? torch::stable::new_empty(A, {N, K, C, V, V}) : torch::stable::new_empty(A, {0});
  if (x.numel() == 0 || A.numel() == 0) {
    if (need_x && gx.numel() > 0) torch::stable::zero_(gx);
    if (need_A && gA.numel() > 0) torch::stable::zero_(gA);
    return std::make_tuple(gx, gA);
  }
  dispatch_float(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    refined_bwd_impl<T>(grad.const_data_ptr<T>(), x.const_data_ptr<T>(), A.const_data_ptr<T>(),
                            need_x ? gx.mutable_data_ptr<T>() : nullptr, need_A ? gA.mutable_data_ptr<T>() : nullptr,
                            N, K, C, Tn, V, sum_subsets);
  });
  return std::make_tuple(gx, gA);
}

// x (N, C, T, V), A (K, V, V) -> (N, K, C, T, V) or, summed over K, (N, C, T, V).
Tensor graph_shared_fwd(Tensor x, Tensor A, bool sum_subsets) {
  check_graph(x, A);
  STD_TORCH_CHECK(x.dim() == 4 && A.dim() == 3, "x must be (N, C, T, V) and A (K, V, V)");
  const int64_t N = x.size(0), C = x.size(1), Tn = x.size(2), V = x.size(3), K = A.size(0);
  STD_TORCH_CHECK(A.size(1) == V && A.size(2) == V, "A must have shape (K, V, V) matching x");
  Tensor out = sum_subsets ? torch::stable::new_empty(x, {N, C, Tn, V}) : torch::stable::new_empty(x, {N, K, C, Tn, V});
  if (out.numel() == 0) return out;
  if (x.numel() == 0 || K == 0) {
    torch::stable::zero_(out);
    return out;
  }
  dispatch_float(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    shared_fwd_impl<T>(x.const_data_ptr<T>(), A.const_data_ptr<T>(), out.mutable_data_ptr<T>(), N, C, Tn, V, K,
                           sum_subsets);
  });
  return out;
}

std::tuple<Tensor, Tensor> graph_shared_bwd(Tensor grad, Tensor x, Tensor A, bool sum_subsets, bool need_x,
                                            bool need_A) {
  check_graph(x, A);
  check_cpu_contig(grad, "grad");
  STD_TORCH_CHECK(grad.scalar_type() == x.scalar_type(), "grad must have the dtype of x");
  const int64_t N = x.size(0), C = x.size(1), Tn = x.size(2), V = x.size(3), K = A.size(0);
  const int64_t expect = sum_subsets ? x.numel() : x.numel() * K;
  STD_TORCH_CHECK(grad.numel() == expect, "grad has the wrong shape");
  Tensor gx = need_x ? torch::stable::new_empty(x, {N, C, Tn, V}) : torch::stable::new_empty(x, {0});
  Tensor gA = need_A ? torch::stable::new_empty(A, {K, V, V}) : torch::stable::new_empty(A, {0});
  if (x.numel() == 0 || K == 0) {
    if (need_x && gx.numel() > 0) torch::stable::zero_(gx);
    if (need_A && gA.numel() > 0) torch::stable::zero_(gA);
    return std::make_tuple(gx, gA);
  }
  dispatch_float(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    shared_bwd_impl<T>(grad.const_data_ptr<T>(), x.const_data_ptr<T>(), A.const_data_ptr<T>(),
                           need_x ? gx.mutable_data_ptr<T>() : nullptr, need_A ? gA.mutable_data_ptr<T>() : nullptr, N,
                           C, Tn, V, K, sum_subsets);
  });
  return std::make_tuple(gx, gA);
}

int64_t kernels_version() { return TAL_KERNELS_VERSION; }

}  // namespace

STABLE_TORCH_LIBRARY(tal_ops_ext, m) {
  m.def("kernels_version() -> int");
  m.def("segment_iou(Tensor a, Tensor b) -> Tensor");
  m.def("segment_iou_matched(Tensor a, Tensor b) -> Tensor");
  m.def(
      "soft_nms_grouped(Tensor segs, Tensor scores, Tensor offsets, float iou_threshold, float sigma, "
      "float min_score, int method, int max_num) -> (Tensor, Tensor, Tensor)");
  m.def("hard_nms_grouped(Tensor segs, Tensor order, Tensor offsets, float iou_threshold) -> Tensor");
  m.def("seg_voting(Tensor nms_segs, Tensor segs, Tensor scores, float thr) -> Tensor");
  m.def("graph_refined_fwd(Tensor x, Tensor A, bool sum_subsets) -> Tensor");
  m.def(
      "graph_refined_bwd(Tensor grad, Tensor x, Tensor A, bool sum_subsets, bool need_x, bool need_A) "
      "-> (Tensor, Tensor)");
  m.def("graph_shared_fwd(Tensor x, Tensor A, bool sum_subsets) -> Tensor");
  m.def(
      "graph_shared_bwd(Tensor grad, Tensor x, Tensor A, bool sum_subsets, bool need_x, bool need_A) "
      "-> (Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(tal_ops_ext, CompositeExplicitAutograd, m) {
  m.impl("kernels_version", TORCH_BOX(&kernels_version));
}

STABLE_TORCH_LIBRARY_IMPL(tal_ops_ext, CPU, m) {
  m.impl("segment_iou", TORCH_BOX(&segment_iou));
  m.impl("segment_iou_matched", TORCH_BOX(&segment_iou_matched));
  m.impl("soft_nms_grouped", TORCH_BOX(&soft_nms_grouped));
  m.impl("hard_nms_grouped", TORCH_BOX(&hard_nms_grouped));
  m.impl("seg_voting", TORCH_BOX(&seg_voting));
  m.impl("graph_refined_fwd", TORCH_BOX(&graph_refined_fwd));
  m.impl("graph_refined_bwd", TORCH_BOX(&graph_refined_bwd));
  m.impl("graph_shared_fwd", TORCH_BOX(&graph_shared_fwd));
  m.impl("graph_shared_bwd", TORCH_BOX(&graph_shared_bwd));
}
