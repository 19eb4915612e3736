// tal_ops_ext::soft_nms_grouped and tal_ops_ext::hard_nms_grouped: ActionFormer's
// soft-NMS / greedy NMS loops run independently over groups (classes), the
// groups spread over torch's thread pool.
#include "../common.h"
#include "../kernels/nms.h"

#include <tuple>

namespace tal_ops_ext {
namespace {

namespace tk = tal_kernels;

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
  std::vector<int64_t> counts(G, 0);
  const int64_t threads = std::max<int64_t>(1, torch::stable::get_num_threads());
  std::vector<tk::NmsWork<T>> work(threads);
  parallel_groups(pair_costs(off), [&](int64_t g, int64_t w) {
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
  const int64_t threads = std::max<int64_t>(1, torch::stable::get_num_threads());
  dispatch_float(segs.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T* sp = segs.const_data_ptr<T>();
    std::vector<tk::NmsWork<T>> work(threads);
    parallel_groups(pair_costs(off), [&](int64_t g, int64_t w) {
      tk::hard_nms_sorted<T>(sp, op + off[g], off[g + 1] - off[g], T(iou_threshold), kp + off[g], work[w]);
    });
  });
  return keep;
}

}  // namespace
}  // namespace tal_ops_ext

STABLE_TORCH_LIBRARY_FRAGMENT(tal_ops_ext, m) {
  m.def(
      "soft_nms_grouped(Tensor segs, Tensor scores, Tensor offsets, float iou_threshold, float sigma, "
      "float min_score, int method, int max_num) -> (Tensor, Tensor, Tensor)");
  m.def("hard_nms_grouped(Tensor segs, Tensor order, Tensor offsets, float iou_threshold) -> Tensor");
}

STABLE_TORCH_LIBRARY_IMPL(tal_ops_ext, CPU, m) {
  m.impl("soft_nms_grouped", TORCH_BOX(&tal_ops_ext::soft_nms_grouped));
  m.impl("hard_nms_grouped", TORCH_BOX(&tal_ops_ext::hard_nms_grouped));
}
