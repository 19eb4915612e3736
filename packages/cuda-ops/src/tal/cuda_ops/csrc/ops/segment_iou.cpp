// tal_ops_ext::segment_iou (pairwise, (N, 2) x (M, 2) -> (N, M)) and
// tal_ops_ext::segment_iou_matched ((N, 2), (N, 2) -> (N,)).
#include "../common.h"
#include "../kernels/segment_iou.h"

namespace tal_ops_ext {
namespace {

namespace tk = tal_kernels;

template <typename T>
void pairwise_impl(const Tensor& a, const Tensor& b, Tensor& out) {
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

void check_pair(const Tensor& a, const Tensor& b) {
  check_segments(a, "a");
  check_segments(b, "b");
  STD_TORCH_CHECK(a.scalar_type() == b.scalar_type(), "a and b must have the same dtype");
}

Tensor segment_iou(Tensor a, Tensor b) {
  check_pair(a, b);
  Tensor out = torch::stable::new_empty(a, {a.size(0), b.size(0)});
  dispatch_float(a.scalar_type(), [&](auto tag) { pairwise_impl<decltype(tag)>(a, b, out); });
  return out;
}

Tensor segment_iou_matched(Tensor a, Tensor b) {
  check_pair(a, b);
  STD_TORCH_CHECK(a.size(0) == b.size(0), "a and b must have the same number of segments");
  const int64_t n = a.size(0);
  Tensor out = torch::stable::new_empty(a, {n});
  dispatch_float(a.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T* ap = a.const_data_ptr<T>();
    const T* bp = b.const_data_ptr<T>();
    T* op = out.mutable_data_ptr<T>();
    parallel_rows(n, int64_t(1) << 18,
                  [&](int64_t r0, int64_t r1) { tk::segment_iou_matched_rows<T>(ap, bp, op, r0, r1); });
  });
  return out;
}

}  // namespace
}  // namespace tal_ops_ext

STABLE_TORCH_LIBRARY_FRAGMENT(tal_ops_ext, m) {
  m.def("segment_iou(Tensor a, Tensor b) -> Tensor");
  m.def("segment_iou_matched(Tensor a, Tensor b) -> Tensor");
}

STABLE_TORCH_LIBRARY_IMPL(tal_ops_ext, CPU, m) {
  m.impl("segment_iou", TORCH_BOX(&tal_ops_ext::segment_iou));
  m.impl("segment_iou_matched", TORCH_BOX(&tal_ops_ext::segment_iou_matched));
}
