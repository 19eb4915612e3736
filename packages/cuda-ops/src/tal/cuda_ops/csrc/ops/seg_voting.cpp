// tal_ops_ext::seg_voting: ActionFormer's score voting of boundaries,
// (K, 2) kept segments, (N, 2) input segments, (N,) scores -> (K, 2).
#include "../common.h"
#include "../kernels/nms.h"

namespace tal_ops_ext {
namespace {

namespace tk = tal_kernels;

Tensor seg_voting(Tensor nms_segs, Tensor segs, Tensor scores, double thr) {
  check_segments(nms_segs, "nms_segs");
  check_segments(segs, "segs");
  check_cpu_contig(scores, "scores");
  STD_TORCH_CHECK(nms_segs.scalar_type() == segs.scalar_type() && scores.scalar_type() == segs.scalar_type(),
                  "nms_segs, segs and scores must have the same dtype");
  STD_TORCH_CHECK(scores.dim() == 1 && scores.size(0) == segs.size(0), "scores must have shape (N,)");
  const int64_t K = nms_segs.size(0), n = segs.size(0);
  Tensor out = torch::stable::new_empty(nms_segs, {K, 2});
  dispatch_float(segs.scalar_type(), [&](auto tag) {
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
  });
  return out;
}

}  // namespace
}  // namespace tal_ops_ext

STABLE_TORCH_LIBRARY_FRAGMENT(tal_ops_ext, m) {
  m.def("seg_voting(Tensor nms_segs, Tensor segs, Tensor scores, float thr) -> Tensor");
}

STABLE_TORCH_LIBRARY_IMPL(tal_ops_ext, CPU, m) { m.impl("seg_voting", TORCH_BOX(&tal_ops_ext::seg_voting)); }
