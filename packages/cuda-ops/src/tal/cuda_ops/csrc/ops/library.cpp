// The `tal_ops_ext` operator library: its version. Each op's schema and CPU
// kernel live in the file named after it (segment_iou.cpp, nms.cpp,
// seg_voting.cpp, graph_aggregate.cpp), registered as fragments of it.
#include "../common.h"

// Version of the schemas/semantics, passed by the build (setup.py or the JIT
// builder) from tal/cuda_ops/_cpu/buildcfg.py. The Python loader refuses a
// library whose version differs from the one it expects.
#ifndef TAL_KERNELS_VERSION
#error "TAL_KERNELS_VERSION must be defined by the build (see tal/cuda_ops/_cpu/buildcfg.py)"
#endif

namespace {

int64_t kernels_version() { return TAL_KERNELS_VERSION; }

}  // namespace

STABLE_TORCH_LIBRARY(tal_ops_ext, m) { m.def("kernels_version() -> int"); }

STABLE_TORCH_LIBRARY_IMPL(tal_ops_ext, CompositeExplicitAutograd, m) {
  m.impl("kernels_version", TORCH_BOX(&kernels_version));
}
