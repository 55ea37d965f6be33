// OpenCL CumSum (float32, float16 storage, int32, int64), Trilu and OneHot
// (element bytes, any dtype; OneHot's indices int32, int64 or float32). kernels/positional.cl.
#include <algorithm>
#include <string>

#include "runtime/backends/opencl/normalization_cl.h"

namespace kiln {
namespace {

const char* bytes_type(DType t) {
  switch (dtype_size(t)) {
    case 1: return "uchar";
    case 2: return "ushort";
    case 4: return "uint";
    case 8: return "ulong";
    default: return nullptr;
  }
}

bool fits(const PlanNode& n, const Plan& p) {
  for (const auto* list : {&n.inputs, &n.outputs})
    for (int32_t t : *list)
      if (t >= 0 && !normcl::fits_int(shape_numel(p.tensors[t].shape))) return false;
  return true;
}

// Integer sums of int32/int64 data (position ids from an attention mask) as well as floats.
const char* cumsum_int_type(DType t) { return t == DType::kInt32 ? "int" : t == DType::kInt64 ? "long" : nullptr; }

bool cumsum_supports(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  return fits(n, p) && (normcl::float_operands(n, p, true) || cumsum_int_type(p.tensors[n.inputs[0]].dtype));
}

bool trilu_supports(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  return fits(n, p) && bytes_type(p.tensors[n.inputs[0]].dtype) != nullptr;
}

const char* index_type(DType t) {
  switch (t) {
    case DType::kInt32: return "int";
    case DType::kInt64: return "long";
    case DType::kFloat32: return "float";
    default: return nullptr;
  }
}

bool onehot_supports(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  return fits(n, p) && index_type(p.tensors[n.inputs[0]].dtype) && bytes_type(p.tensors[n.inputs[1]].dtype);
}

Status cumsum_cl(ClKernelArgs& a) {
  const ClTensor& x = a.inputs[0];
  const int64_t axis = a.attrs().get_int("axis", 0);
  if (axis < 0 || axis >= static_cast<int64_t>(x.shape.size()) || a.outputs[0].shape != x.shape)
    return invalid_plan("CumSum: axis or output does not match the input");
  int inner = 1;
  for (size_t d = axis + 1; d < x.shape.size(); ++d) inner *= static_cast<int>(x.shape[d]);
  const int n = static_cast<int>(x.shape[axis]);
  const int rows = n ? static_cast<int>(x.numel() / n) : 0;
  if (rows == 0 || n == 0) return Status::ok();
  cl_kernel k;
  const char* ct = cumsum_int_type(x.dtype);
  KILN_TRY(normcl::kernel(a, "positional", ct ? std::string("-DCT=") + ct : std::string(), "cumsum", &k));
  return ClLaunch(a.cl, k, "cumsum")
      .mem(x.mem).mem(a.outputs[0].mem).arg(rows).arg(n).arg(inner)
      .arg(static_cast<cl_int>(a.attrs().get_int("exclusive", 0) != 0))
      .arg(static_cast<cl_int>(a.attrs().get_int("reverse", 0) != 0))
      .run1d(rows, 64);
}

Status trilu_cl(ClKernelArgs& a) {
  const ClTensor& x = a.inputs[0];
  if (x.shape.size() < 2 || a.outputs[0].shape != x.shape) return invalid_plan("Trilu: output does not match the input");
  const int total = static_cast<int>(x.numel());
  if (total == 0) return Status::ok();
  cl_kernel k;
  KILN_TRY(normcl::kernel(a, "positional", std::string("-DT=") + bytes_type(x.dtype) + " -DIDX=int", "trilu", &k));
  // k beyond the matrix keeps everything or nothing: clamp it into int range.
  const int64_t kk = std::max<int64_t>(-(int64_t{1} << 30), std::min<int64_t>(a.attrs().get_int("k", 0), int64_t{1} << 30));
  return ClLaunch(a.cl, k, "trilu")
      .mem(x.mem).mem(a.outputs[0].mem).arg(total).arg(static_cast<cl_int>(x.shape[x.shape.size() - 2]))
      .arg(static_cast<cl_int>(x.shape.back())).arg(static_cast<cl_int>(kk))
      .arg(static_cast<cl_int>(a.attrs().get_int("upper", 1) != 0))
      .run1d(total, 64);
}

Status onehot_cl(ClKernelArgs& a) {
  const ClTensor& ind = a.inputs[0];
  const int64_t depth = a.attrs().get_int("depth", 0), axis = a.attrs().get_int("axis", 0);
  const ClTensor& y = a.outputs[0];
  if (depth < 1 || axis < 0 || axis > static_cast<int64_t>(ind.shape.size()) || a.inputs[1].numel() != 2 ||
      y.numel() != ind.numel() * depth)
    return invalid_plan("OneHot: depth, axis or output do not match the inputs");
  int inner = 1;
  for (size_t d = static_cast<size_t>(axis); d < ind.shape.size(); ++d) inner *= static_cast<int>(ind.shape[d]);
  const int total = static_cast<int>(y.numel());
  if (total == 0) return Status::ok();
  const char* idx = index_type(ind.dtype);
  if (!idx) return unsupported("OneHot: indices of dtype " + dtype_name(ind.dtype));
  cl_kernel k;
  KILN_TRY(normcl::kernel(a, "positional", std::string("-DT=") + bytes_type(y.dtype) + " -DIDX=" + idx, "onehot", &k));
  return ClLaunch(a.cl, k, "onehot")
      .mem(ind.mem).mem(a.inputs[1].mem).mem(y.mem).arg(total).arg(static_cast<cl_int>(depth)).arg(inner)
      .run1d(total, 64);
}

}  // namespace

void register_positional_opencl(ClRegistry& r) {
  r.add("CumSum", cumsum_cl, cumsum_supports);
  r.add("Trilu", trilu_cl, trilu_supports);
  r.add("OneHot", onehot_cl, onehot_supports);
}

}  // namespace kiln
