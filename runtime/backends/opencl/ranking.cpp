// OpenCL ArgMax, ArgMin and TopK (kernels/ranking.cl) over float32, float16 storage, int32 and
// int64 (index arithmetic: ArgMax of a Cast(Equal) finds a token); the other integer types and
// float64 run on the CPU. One work-item per row along the axis.
#include <string>

#include "runtime/backends/opencl/normalization_cl.h"

namespace kiln {
namespace {

// Float input (outputs: an int64 index tensor, and TopK's values of the input's dtype).
bool ranking_supports(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  const PlanTensor& x = p.tensors[n.inputs[0]];
  if (!normcl::fits_int(shape_numel(x.shape))) return false;
  return x.dtype == DType::kFloat32 || x.dtype == DType::kFloat16 || x.dtype == DType::kInt32 || x.dtype == DType::kInt64;
}

struct Rows {
  int outer = 1, n = 1, inner = 1;
};

Status rows_of(const ClKernelArgs& a, int64_t axis, Rows* r) {
  const Shape& s = a.inputs[0].shape;
  if (axis < 0 || axis >= static_cast<int64_t>(s.size())) return invalid_plan(a.node.op + ": axis out of range");
  for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d)
    (d < axis ? r->outer : d == axis ? r->n : r->inner) *= static_cast<int>(s[d]);
  return Status::ok();
}

// normcl::kernel picks half storage from output 0's dtype; ArgMax's output is int64, so the
// input's dtype decides here.
Status ranking_kernel(ClKernelArgs& a, bool largest, const char* fn, cl_kernel* k) {
  std::string opts = largest ? "-DLARGEST=1" : "-DLARGEST=0";
  if (a.inputs[0].dtype == DType::kFloat16) opts += " -DKILN_HALF";
  if (a.inputs[0].dtype == DType::kInt32) opts += " -DVT=int";
  if (a.inputs[0].dtype == DType::kInt64) opts += " -DVT=long";
  static const std::string src = std::string(embedded_kernel_source("float_storage")) + embedded_kernel_source("ranking");
  return a.cl.kernel(src, opts, fn, k).with_context("node '" + a.node.name + "'");
}

template <bool kMax>
Status arg_cl(ClKernelArgs& a) {
  Rows r;
  KILN_TRY(rows_of(a, a.attrs().get_int("axis", 0), &r));
  const int rows = r.outer * r.inner;
  if (a.outputs[0].numel() != rows || a.outputs[0].dtype != DType::kInt64 || r.n == 0)
    return invalid_plan(a.node.op + ": output does not match the input");
  if (rows == 0) return Status::ok();
  cl_kernel k;
  KILN_TRY(ranking_kernel(a, kMax, "arg_reduce", &k));
  const cl_int last = a.attrs().get_int("select_last_index", 0) ? 1 : 0;
  return ClLaunch(a.cl, k, "arg_reduce")
      .mem(a.inputs[0].mem).mem(a.outputs[0].mem).arg(rows).arg(r.n).arg(r.inner).arg(last)
      .run1d(rows, 64);
}

Status topk_cl(ClKernelArgs& a) {
  Rows r;
  KILN_TRY(rows_of(a, a.attrs().get_int("axis", -1), &r));
  const int64_t k = a.attrs().get_int("k", -1);
  const int rows = r.outer * r.inner;
  if (a.outputs.size() < 2 || k < 0 || k > r.n || a.outputs[0].numel() != rows * k || a.outputs[1].numel() != rows * k ||
      a.outputs[1].dtype != DType::kInt64 || a.outputs[0].dtype != a.inputs[0].dtype)
    return invalid_plan("TopK: k or the outputs do not match the input");
  if (rows == 0 || k == 0) return Status::ok();
  cl_kernel kern;
  KILN_TRY(ranking_kernel(a, a.attrs().get_int("largest", 1) != 0, "topk", &kern));
  return ClLaunch(a.cl, kern, "topk")
      .mem(a.inputs[0].mem).mem(a.outputs[0].mem).mem(a.outputs[1].mem).arg(rows).arg(r.n).arg(r.inner)
      .arg(static_cast<cl_int>(k))
      .run1d(rows, 64);
}

}  // namespace

void register_ranking_opencl(ClRegistry& r) {
  r.add("ArgMax", arg_cl<true>, ranking_supports);
  r.add("ArgMin", arg_cl<false>, ranking_supports);
  r.add("TopK", topk_cl, ranking_supports);
}

}  // namespace kiln
