// Skeleton graph aggregation kernels (small register-blocked GEMMs).
//
// Torch-free and single-threaded: they work on raw contiguous arrays, one row
// range or one group per call; the bindings in ../ops/ parallelise. Compiled with
// -ffp-contract=off and without -ffast-math, so every expression is evaluated
// exactly in the order written, in the element type T.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace tal_kernels {

// ---------------------------------------------------------------------------
// Skeleton graph aggregation (CTR-GCN). Every contraction is a small GEMM
//   out[r, w] (+)= sum_k M[r, k] * B[k, w]     (w vectorized, kGemmW at a time)
// on per-(n, c) slices, with the time axis made contiguous by transposing the
// (T, V) slices to (V, Tp), Tp = T rounded up to kGemmW (zero padded).
// ---------------------------------------------------------------------------
constexpr int64_t kGemmW = 8;  // columns per register block (all widths are padded to it)

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

#if defined(__GNUC__) || defined(__clang__)
// Register-blocked micro-kernel with GCC/Clang vector extensions (16-byte
// vectors: SSE2 / NEON baseline, no ISA dispatch). Kept out of line: inlined
// into the large work-item lambdas GCC vectorizes it much worse.
template <typename T>
__attribute__((noinline)) void small_gemm(const T* M, int64_t ldm, int64_t R, int64_t Kd, const T* B, int64_t ldb,
                                          int64_t W, T* out, int64_t ldo, bool accumulate) {
  typedef T Vec __attribute__((vector_size(16)));
  constexpr int L = 16 / sizeof(T);
  constexpr int RB = sizeof(T) == 4 ? 4 : 2;  // rows per block: 8 accumulator registers
  constexpr int NV = kGemmW / L;
  for (int64_t w0 = 0; w0 < W; w0 += kGemmW) {
    int64_t r0 = 0;
    for (; r0 < R; r0 += RB) {
      const int rows = static_cast<int>(std::min<int64_t>(RB, R - r0));
      Vec acc[RB][NV];
      for (int rb = 0; rb < RB; ++rb)
        for (int j = 0; j < NV; ++j) acc[rb][j] = Vec{};
      if (rows == RB) {
        for (int64_t k = 0; k < Kd; ++k) {
          Vec b[NV];
          std::memcpy(b, B + k * ldb + w0, sizeof(b));
          for (int rb = 0; rb < RB; ++rb) {
            const Vec m = Vec{} + M[(r0 + rb) * ldm + k];
            for (int j = 0; j < NV; ++j) acc[rb][j] += m * b[j];
          }
        }
      } else {
        for (int64_t k = 0; k < Kd; ++k) {
          Vec b[NV];
          std::memcpy(b, B + k * ldb + w0, sizeof(b));
          for (int rb = 0; rb < rows; ++rb) {
            const Vec m = Vec{} + M[(r0 + rb) * ldm + k];
            for (int j = 0; j < NV; ++j) acc[rb][j] += m * b[j];
          }
        }
      }
      for (int rb = 0; rb < rows; ++rb) {
        T* o = out + (r0 + rb) * ldo + w0;
        if (accumulate) {
          Vec prev[NV];
          std::memcpy(prev, o, sizeof(prev));
          for (int j = 0; j < NV; ++j) acc[rb][j] += prev[j];
        }
        std::memcpy(o, acc[rb], sizeof(acc[rb]));
      }
    }
  }
}
#else
template <typename T>
void small_gemm(const T* M, int64_t ldm, int64_t R, int64_t Kd, const T* B, int64_t ldb, int64_t W, T* out,
                int64_t ldo, bool accumulate) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t w0 = 0; w0 < W; w0 += kGemmW) {
      T acc[kGemmW] = {};
      for (int64_t k = 0; k < Kd; ++k) {
        const T m = M[r * ldm + k];
        for (int64_t j = 0; j < kGemmW; ++j) acc[j] += m * B[k * ldb + w0 + j];
      }
      for (int64_t j = 0; j < kGemmW; ++j) out[r * ldo + w0 + j] = accumulate ? out[r * ldo + w0 + j] + acc[j] : acc[j];
    }
}
#endif

// dst[c * ldd + r] = src[r * C + c] for r < R, c < C; columns R..ldd of dst are zeroed.
template <typename T>
inline void transpose_pad(const T* src, int64_t R, int64_t C, T* dst, int64_t ldd) {
  for (int64_t c = 0; c < C; ++c) {
    T* d = dst + c * ldd;
    for (int64_t r = 0; r < R; ++r) d[r] = src[r * C + c];
    for (int64_t r = R; r < ldd; ++r) d[r] = T(0);
  }
}

// dst[r * ldd + c] = src[r * C + c]; columns C..ldd zeroed.
template <typename T>
inline void copy_pad(const T* src, int64_t R, int64_t C, T* dst, int64_t ldd) {
  for (int64_t r = 0; r < R; ++r) {
    std::memcpy(dst + r * ldd, src + r * C, sizeof(T) * C);
    for (int64_t c = C; c < ldd; ++c) dst[r * ldd + c] = T(0);
  }
}

// out[t * V + u] = oT[u * ldo + t]  (back from the transposed layout)
template <typename T>
inline void untranspose(const T* oT, int64_t V, int64_t Tn, int64_t ldo, T* out) {
  for (int64_t t = 0; t < Tn; ++t)
    for (int64_t u = 0; u < V; ++u) out[t * V + u] = oT[u * ldo + t];
}

}  // namespace tal_kernels
