// OpenCL ReduceSum/Mean/Max/Min (float32, float16 storage; integer reductions stay on the CPU, where constant
// folding runs them anyway). kernels/reduce.cl.
#include <cmath>

#include "runtime/backends/normalization_geometry.h"
#include "runtime/backends/opencl/normalization_cl.h"

namespace kiln {
namespace {

enum Op { kSum = 0, kMax = 1, kMin = 2 };

bool reduce_supported(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  return normcl::float_operands(n, p, true);
}

template <Op kOp, bool kMean>
Status reduce_cl(ClKernelArgs& a) {
  const normgeo::ReduceGeom g = normgeo::reduce_geom(a.inputs[0].shape, a.attrs().get_ints("axes"));
  std::vector<int64_t> keep_dims, keep_strides, red_dims, red_strides;
  for (size_t i = 0; i < g.dims.size(); ++i) {
    (g.reduced[i] ? red_dims : keep_dims).push_back(g.dims[i]);
    (g.reduced[i] ? red_strides : keep_strides).push_back(g.in_strides[i]);
  }
  if (keep_dims.size() > static_cast<size_t>(kClMaxDims) || red_dims.size() > static_cast<size_t>(kClMaxDims))
    return unsupported("reduction over more than 8 dims");
  const int nout = static_cast<int>(g.out_numel), R = static_cast<int>(g.reduce_numel);
  if (nout == 0) return Status::ok();
  const int nkeep = static_cast<int>(keep_dims.size()), nred = static_cast<int>(red_dims.size());
  const float scale = kMean ? (R ? 1.0f / static_cast<float>(R) : NAN) : 1.0f;
  const std::string opts = "-DOP=" + std::to_string(static_cast<int>(kOp));
  const bool contiguous = nred == 1 && red_strides[0] == 1;
  // Several reduced dims (e.g. axes {0, 2}) are not coalesced along the row or across outputs
  // either way: long ones get a whole work-group.
  cl_kernel k;
  if (normcl::use_group_per_row(nout, R, contiguous) || (nred > 1 && R >= 64)) {
    KILN_TRY(normcl::kernel(a, "reduce", opts, "reduce_group", &k));
    const size_t ls = normcl::group_size(a, k);
    const size_t global = static_cast<size_t>(nout) * ls;
    return ClLaunch(a.cl, k, "reduce_group")
        .mem(a.inputs[0].mem).mem(a.outputs[0].mem).arg(nout).arg(nkeep).arg(cl_dims(keep_dims))
        .arg(cl_dims(keep_strides)).arg(nred).arg(cl_dims(red_dims)).arg(cl_dims(red_strides)).arg(R).arg(scale)
        .local(ls * sizeof(float)).run(1, &global, &ls);
  }
  KILN_TRY(normcl::kernel(a, "reduce", opts, "reduce_item", &k));
  return ClLaunch(a.cl, k, "reduce_item")
      .mem(a.inputs[0].mem).mem(a.outputs[0].mem).arg(nout).arg(nkeep).arg(cl_dims(keep_dims))
      .arg(cl_dims(keep_strides)).arg(nred).arg(cl_dims(red_dims)).arg(cl_dims(red_strides)).arg(R).arg(scale)
      .run1d(nout, 64);
}

}  // namespace

void register_normalization_reduce_opencl(ClRegistry& r) {
  r.add("ReduceSum", reduce_cl<kSum, false>, reduce_supported);
  r.add("ReduceMean", reduce_cl<kSum, true>, reduce_supported);
  r.add("ReduceMax", reduce_cl<kMax, false>, reduce_supported);
  r.add("ReduceMin", reduce_cl<kMin, false>, reduce_supported);
}

}  // namespace kiln
