// OpenCL reductions (float32, float16 storage; integer and float64 reductions stay on the CPU,
// where constant folding runs them anyway). kernels/reduce.cl.
#include <cmath>

#include "runtime/backends/normalization_geometry.h"
#include "runtime/backends/opencl/normalization_cl.h"

namespace kiln {
namespace {

enum Op { kSum = 0, kMax = 1, kMin = 2, kProd = 3 };
enum Map { kNoMap = 0, kAbs = 1, kSquare = 2 };
enum Finish { kNoFinish = 0, kSqrt = 1, kLog = 2 };

// One reduction kind as reduce.cl's build options.
struct Kind {
  Op op;
  bool mean;
  Map map;
  Finish finish;
  bool lse;
};
constexpr Kind kReduceSum{kSum, false, kNoMap, kNoFinish, false};
constexpr Kind kReduceMean{kSum, true, kNoMap, kNoFinish, false};
constexpr Kind kReduceMax{kMax, false, kNoMap, kNoFinish, false};
constexpr Kind kReduceMin{kMin, false, kNoMap, kNoFinish, false};
constexpr Kind kReduceProd{kProd, false, kNoMap, kNoFinish, false};
constexpr Kind kReduceL1{kSum, false, kAbs, kNoFinish, false};
constexpr Kind kReduceL2{kSum, false, kSquare, kSqrt, false};
constexpr Kind kReduceSumSquare{kSum, false, kSquare, kNoFinish, false};
constexpr Kind kReduceLogSum{kSum, false, kNoMap, kLog, false};
constexpr Kind kReduceLogSumExp{kSum, false, kNoMap, kNoFinish, true};

bool reduce_supported(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  return normcl::float_operands(n, p, true);
}

template <const Kind& K>
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
  const float scale = K.mean ? (R ? 1.0f / static_cast<float>(R) : NAN) : 1.0f;
  const std::string opts = "-DOP=" + std::to_string(static_cast<int>(K.op)) + " -DMAP=" + std::to_string(K.map) +
                           " -DFINISH=" + std::to_string(K.finish) + " -DLSE=" + std::to_string(K.lse ? 1 : 0);
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
  r.add("ReduceSum", reduce_cl<kReduceSum>, reduce_supported);
  r.add("ReduceMean", reduce_cl<kReduceMean>, reduce_supported);
  r.add("ReduceMax", reduce_cl<kReduceMax>, reduce_supported);
  r.add("ReduceMin", reduce_cl<kReduceMin>, reduce_supported);
  r.add("ReduceProd", reduce_cl<kReduceProd>, reduce_supported);
  r.add("ReduceL1", reduce_cl<kReduceL1>, reduce_supported);
  r.add("ReduceL2", reduce_cl<kReduceL2>, reduce_supported);
  r.add("ReduceSumSquare", reduce_cl<kReduceSumSquare>, reduce_supported);
  r.add("ReduceLogSum", reduce_cl<kReduceLogSum>, reduce_supported);
  r.add("ReduceLogSumExp", reduce_cl<kReduceLogSumExp>, reduce_supported);
}

}  // namespace kiln
