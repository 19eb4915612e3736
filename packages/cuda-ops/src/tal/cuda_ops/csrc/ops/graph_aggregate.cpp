// Skeleton graph aggregation (ST-GCN / CTR-GCN), forward and backward:
//   tal_ops_ext::graph_refined_fwd/bwd  x (N, K, C, T, V), A (N, K, C, V, V)
//   tal_ops_ext::graph_shared_fwd/bwd   x (N, C, T, V),    A (K, V, V)
#include "../common.h"
#include "../kernels/graph.h"

#include <cstring>
#include <tuple>

namespace tal_ops_ext {
namespace {

namespace tk = tal_kernels;

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

// Gradient buffers shaped like x and A (an empty (0,) tensor for one not needed), zero-filled
// when the op has nothing to compute.
std::tuple<Tensor, Tensor> grad_buffers(const Tensor& x, const Tensor& A, bool need_x, bool need_A, bool zero) {
  Tensor gx = need_x ? torch::stable::empty_like(x) : torch::stable::new_empty(x, {0});
  Tensor gA = need_A ? torch::stable::empty_like(A) : torch::stable::new_empty(A, {0});
  if (zero && need_x && gx.numel() > 0) torch::stable::zero_(gx);
  if (zero && need_A && gA.numel() > 0) torch::stable::zero_(gA);
  return std::make_tuple(gx, gA);
}

template <typename T>
T* data_or_null(Tensor& t, bool needed) {
  return needed ? t.mutable_data_ptr<T>() : nullptr;
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
  const bool empty = x.numel() == 0 || A.numel() == 0;
  auto [gx, gA] = grad_buffers(x, A, need_x, need_A, empty);
  if (empty) return std::make_tuple(gx, gA);
  dispatch_float(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    refined_bwd_impl<T>(grad.const_data_ptr<T>(), x.const_data_ptr<T>(), A.const_data_ptr<T>(),
                        data_or_null<T>(gx, need_x), data_or_null<T>(gA, need_A), N, K, C, Tn, V, sum_subsets);
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
  const bool empty = x.numel() == 0 || K == 0;
  auto [gx, gA] = grad_buffers(x, A, need_x, need_A, empty);
  if (empty) return std::make_tuple(gx, gA);
  dispatch_float(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    shared_bwd_impl<T>(grad.const_data_ptr<T>(), x.const_data_ptr<T>(), A.const_data_ptr<T>(),
                       data_or_null<T>(gx, need_x), data_or_null<T>(gA, need_A), N, C, Tn, V, K, sum_subsets);
  });
  return std::make_tuple(gx, gA);
}

}  // namespace
}  // namespace tal_ops_ext

STABLE_TORCH_LIBRARY_FRAGMENT(tal_ops_ext, m) {
  m.def("graph_refined_fwd(Tensor x, Tensor A, bool sum_subsets) -> Tensor");
  m.def(
      "graph_refined_bwd(Tensor grad, Tensor x, Tensor A, bool sum_subsets, bool need_x, bool need_A) "
      "-> (Tensor, Tensor)");
  m.def("graph_shared_fwd(Tensor x, Tensor A, bool sum_subsets) -> Tensor");
  m.def(
      "graph_shared_bwd(Tensor grad, Tensor x, Tensor A, bool sum_subsets, bool need_x, bool need_A) "
      "-> (Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(tal_ops_ext, CPU, m) {
  m.impl("graph_refined_fwd", TORCH_BOX(&tal_ops_ext::graph_refined_fwd));
  m.impl("graph_refined_bwd", TORCH_BOX(&tal_ops_ext::graph_refined_bwd));
  m.impl("graph_shared_fwd", TORCH_BOX(&tal_ops_ext::graph_shared_fwd));
  m.impl("graph_shared_bwd", TORCH_BOX(&tal_ops_ext::graph_shared_bwd));
}
