// ActionFormer's NMS loops: soft-NMS and hard NMS of one group, score voting.
//
// Torch-free and single-threaded: they work on raw contiguous arrays, one row
// range or one group per call; the bindings in ../ops/ parallelise. Compiled with
// -ffp-contract=off and without -ffast-math, so every expression is evaluated
// exactly in the order written, in the element type T; the NMS
// kernels rely on this to be bit-identical to ActionFormer's float32 loops.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace tal_kernels {

// ---------------------------------------------------------------------------
// ActionFormer's NMS overlap: area = (x2 - x1) + 1e-6 (in T), and
// ovr = inter / (area_i + area_j - inter). A zero or negative denominator
// (only possible for inverted segments) gives 0 instead of NaN/-0.
// ---------------------------------------------------------------------------
template <typename T>
inline T af_area(T x1, T x2) {
  return (x2 - x1) + T(1e-6);
}

template <typename T>
inline T af_overlap(T ix1, T ix2, T ia, T x1, T x2, T a) {
  const T lo = ix1 < x1 ? x1 : ix1;  // std::max(ix1, x1)
  const T hi = x2 < ix2 ? x2 : ix2;  // std::min(ix2, x2)
  const T d = hi - lo;
  const T inter = T(0) < d ? d : T(0);  // std::max(0, d)
  const T den = ia + a - inter;
  const T q = inter / den;
  return den > T(0) ? q : T(0);
}

// Index of the first maximum of s[0, n) (n >= 1, no NaN in s).
template <typename T>
inline int64_t first_argmax(const T* s, int64_t n) {
  constexpr int L = 8;
  T m = s[0];
  int64_t p = 1;
  if (n >= 1 + 2 * L) {
    T acc[L];
    for (int k = 0; k < L; ++k) acc[k] = s[1 + k];
    for (p = 1 + L; p + L <= n; p += L) {
      for (int k = 0; k < L; ++k) acc[k] = acc[k] < s[p + k] ? s[p + k] : acc[k];
    }
    for (int k = 0; k < L; ++k) m = m < acc[k] ? acc[k] : m;
  }
  for (; p < n; ++p) m = m < s[p] ? s[p] : m;
  for (int64_t q = 0; q < n; ++q) {
    if (s[q] == m) return q;
  }
  return 0;
}

template <typename T>
struct NmsWork {
  std::vector<T> x1, x2, ar, sc, ov;
  std::vector<int64_t> id, hit;
  void resize(int64_t n) {
    hit.resize(n);
    x1.resize(n);
    x2.resize(n);
    ar.resize(n);
    sc.resize(n);
    ov.resize(n);
    id.resize(n);
  }
};

enum SoftMethod : int { kHard = 0, kLinear = 1, kGaussian = 2 };

// Soft-NMS of one group, with the semantics of ActionFormer's softnms_1d_cpu:
// repeatedly select the first maximum among the remaining candidates, swap it
// to the front, decay the scores of all later candidates and drop those whose
// score falls below min_score by moving the last candidate into their slot.
// segs: (n, 2), scores: (n,). Writes the selection order (indices into the
// group) and the score at selection time; returns how many were selected.
template <typename T>
int64_t soft_nms_group(const T* segs, const T* scores, int64_t n, T iou_threshold, T sigma, T min_score, int method,
                       int64_t* out_id, T* out_score, NmsWork<T>& w) {
  if (n <= 0) return 0;
  w.resize(n);
  T* x1 = w.x1.data();
  T* x2 = w.x2.data();
  T* ar = w.ar.data();
  T* sc = w.sc.data();
  T* ov = w.ov.data();
  int64_t* id = w.id.data();
  int64_t* hit = w.hit.data();
  for (int64_t k = 0; k < n; ++k) {
    x1[k] = segs[2 * k];
    x2[k] = segs[2 * k + 1];
    ar[k] = af_area(x1[k], x2[k]);
    sc[k] = scores[k];
    id[k] = k;
  }
  int64_t count = n;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t mp = i + first_argmax(sc + i, count - i);
    if (mp != i) {
      std::swap(x1[i], x1[mp]);
      std::swap(x2[i], x2[mp]);
      std::swap(ar[i], ar[mp]);
      std::swap(sc[i], sc[mp]);
      std::swap(id[i], id[mp]);
    }
    out_id[i] = id[i];
    out_score[i] = sc[i];
    const T ix1 = x1[i], ix2 = x2[i], ia = ar[i];
    const int64_t b = i + 1;
    for (int64_t p = b; p < count; ++p) ov[p] = af_overlap(ix1, ix2, ia, x1[p], x2[p], ar[p]);
    if (method == kGaussian) {
      // exp(-0 / sigma) == 1 exactly, so candidates without overlap keep their score:
      // collect the overlapping ones without branching, then call expf only for them.
      int64_t k = 0;
      for (int64_t p = b; p < count; ++p) {
        hit[k] = p;
        k += ov[p] > T(0) ? 1 : 0;
      }
      for (int64_t q = 0; q < k; ++q) {
        const int64_t p = hit[q];
        sc[p] *= std::exp(-(ov[p] * ov[p]) / sigma);
      }
    } else if (method == kLinear) {
      for (int64_t p = b; p < count; ++p) sc[p] = ov[p] >= iou_threshold ? sc[p] * (T(1) - ov[p]) : sc[p];
    } else {
      for (int64_t p = b; p < count; ++p) sc[p] = ov[p] >= iou_threshold ? sc[p] * T(0) : sc[p];
    }
    int64_t below = 0;
    for (int64_t p = b; p < count; ++p) below += sc[p] < min_score ? 1 : 0;
    if (below > 0) {
      int64_t p = b;
      while (p < count) {
        if (sc[p] < min_score) {
          const int64_t last = count - 1;
          x1[p] = x1[last];
          x2[p] = x2[last];
          ar[p] = ar[last];
          sc[p] = sc[last];
          id[p] = id[last];
          count = last;
        } else {
          ++p;
        }
      }
    }
  }
  return count;
}

// Greedy hard NMS of one group whose candidates are already in the order to
// visit (descending score). keep[k] is set to 0 for suppressed candidates.
// Suppression when ovr >= iou_threshold (ActionFormer's nms_1d_cpu).
template <typename T>
void hard_nms_sorted(const T* segs, const int64_t* order, int64_t n, T iou_threshold, uint8_t* keep,
                     NmsWork<T>& w) {
  if (n <= 0) return;
  w.resize(n);
  T* x1 = w.x1.data();
  T* x2 = w.x2.data();
  T* ar = w.ar.data();
  for (int64_t k = 0; k < n; ++k) {
    const int64_t o = order[k];
    x1[k] = segs[2 * o];
    x2[k] = segs[2 * o + 1];
    ar[k] = af_area(x1[k], x2[k]);
    keep[k] = 1;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!keep[i]) continue;
    const T ix1 = x1[i], ix2 = x2[i], ia = ar[i];
    for (int64_t j = i + 1; j < n; ++j) {
      const T o = af_overlap(ix1, ix2, ia, x1[j], x2[j], ar[j]);
      keep[j] = o >= iou_threshold ? uint8_t(0) : keep[j];
    }
  }
}

// ---------------------------------------------------------------------------
// Score voting of boundaries (ActionFormer seg_voting): for each kept segment r,
//   iou_j = inter / (len_r + len_j - inter)   (0 if the denominator is 0)
//   w_j = score_j * iou_j if iou_j >= thr else 0
//   out_r = sum_j w_j * seg_j / sum_j w_j     (seg_r unchanged if the sum is 0)
// Weights are formed in T, sums are accumulated in double.
// ---------------------------------------------------------------------------
template <typename T>
void seg_voting_rows(const T* nms, const T* x1, const T* x2, const T* len, const T* sc, int64_t n, T thr, T* out,
                     int64_t r0, int64_t r1) {
  constexpr int L = 8;
  for (int64_t r = r0; r < r1; ++r) {
    const T s = nms[2 * r], e = nms[2 * r + 1];
    const T l = e - s;
    double aw[L] = {0}, a1[L] = {0}, a2[L] = {0};
    int64_t j = 0;
    for (; j + L <= n; j += L) {
      for (int k = 0; k < L; ++k) {
        const int64_t q = j + k;
        const T lo = s < x1[q] ? x1[q] : s;
        const T hi = x2[q] < e ? x2[q] : e;
        const T d = hi - lo;
        const T inter = d > T(0) ? d : T(0);
        const T den = l + len[q] - inter;
        const T iou = den != T(0) ? inter / den : T(0);
        const T wq = iou >= thr ? sc[q] * iou : T(0);
        aw[k] += double(wq);
        a1[k] += double(wq) * double(x1[q]);
        a2[k] += double(wq) * double(x2[q]);
      }
    }
    double sw = 0, s1 = 0, s2 = 0;
    for (int k = 0; k < L; ++k) {
      sw += aw[k];
      s1 += a1[k];
      s2 += a2[k];
    }
    for (; j < n; ++j) {
      const T lo = s < x1[j] ? x1[j] : s;
      const T hi = x2[j] < e ? x2[j] : e;
      const T d = hi - lo;
      const T inter = d > T(0) ? d : T(0);
      const T den = l + len[j] - inter;
      const T iou = den != T(0) ? inter / den : T(0);
      const T wq = iou >= thr ? sc[j] * iou : T(0);
      sw += double(wq);
      s1 += double(wq) * double(x1[j]);
      s2 += double(wq) * double(x2[j]);
    }
    if (sw != 0.0) {
      out[2 * r] = T(s1 / sw);
      out[2 * r + 1] = T(s2 / sw);
    } else {
      out[2 * r] = s;
      out[2 * r + 1] = e;
    }
  }
}

}  // namespace tal_kernels
