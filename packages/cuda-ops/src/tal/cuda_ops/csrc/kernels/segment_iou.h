// Temporal IoU kernels (segment_iou, segment_iou_matched).
//
// Torch-free and single-threaded: they work on raw contiguous arrays, one row
// range or one group per call; the bindings in ../ops/ parallelise. Compiled with
// -ffp-contract=off and without -ffast-math, so every expression is evaluated
// exactly in the order written, in the element type T.
#pragma once

#include <cstdint>

namespace tal_kernels {

template <typename T>
inline T clamp_len(T d) {
  return d < T(0) ? T(0) : d;  // keeps NaN
}

template <typename T>
inline T iou_from_parts(T inter, T uni) {
  const T q = inter / uni;
  return uni > T(0) ? q : (uni == uni ? T(0) : uni);
}

// Rows [r0, r1) of the (n, m) pairwise IoU matrix. b is given as start, end and
// clamped length arrays (structure of arrays, so the inner loop vectorizes).
template <typename T>
void segment_iou_rows(const T* a, const T* bs, const T* be, const T* bl, int64_t m, T* out, int64_t r0,
                      int64_t r1) {
  for (int64_t i = r0; i < r1; ++i) {
    const T sa = a[2 * i];
    const T ea = a[2 * i + 1];
    const T la = clamp_len(ea - sa);
    T* o = out + i * m;
    for (int64_t j = 0; j < m; ++j) {
      const T lo = sa > bs[j] ? sa : bs[j];
      const T hi = ea < be[j] ? ea : be[j];
      const T inter = clamp_len(hi - lo);
      const T uni = la + bl[j] - inter;
      o[j] = iou_from_parts(inter, uni);
    }
  }
}

template <typename T>
void segment_iou_matched_rows(const T* a, const T* b, T* out, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; ++i) {
    const T sa = a[2 * i], ea = a[2 * i + 1];
    const T sb = b[2 * i], eb = b[2 * i + 1];
    const T la = clamp_len(ea - sa);
    const T lb = clamp_len(eb - sb);
    const T lo = sa > sb ? sa : sb;
    const T hi = ea < eb ? ea : eb;
    const T inter = clamp_len(hi - lo);
    const T uni = la + lb - inter;
    out[i] = iou_from_parts(inter, uni);
  }
}

}  // namespace tal_kernels
