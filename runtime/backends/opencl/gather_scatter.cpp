// OpenCL GatherElements, GatherND, ScatterElements, ScatterND (kernels/gather_scatter.cl).
// Elements move as unsigned integers of their size (1, 2, 4 or 8 bytes), so every dtype runs;
// scatter reductions run on float32, int32 and int64 (others go to the CPU). Index math is
// 32-bit and shapes have rank <= 8: supports() leaves larger nodes to the CPU.
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "runtime/backends/gather_scatter_attrs.h"
#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/backends/opencl/device_copy.h"
#include "runtime/device/cl_runtime.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

const char* bytes_type(size_t bytes) {
  switch (bytes) {
    case 1: return "uchar";
    case 2: return "ushort";
    case 4: return "uint";
    case 8: return "ulong";
    default: return nullptr;
  }
}

const char* arith_type(DType t) {
  switch (t) {
    case DType::kFloat32: return "float";
    case DType::kInt32: return "int";
    case DType::kInt64: return "long";
    default: return nullptr;
  }
}

bool fits(const PlanNode& n, const Plan& p) {
  for (const auto* list : {&n.inputs, &n.outputs})
    for (int32_t t : *list) {
      if (t < 0) continue;
      const PlanTensor& pt = p.tensors[t];
      if (pt.shape.size() > static_cast<size_t>(kClMaxDims) || shape_numel(pt.shape) > std::numeric_limits<cl_int>::max())
        return false;
    }
  return true;
}

bool gather_supports(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  return fits(n, p) && bytes_type(dtype_size(p.tensors[n.inputs[0]].dtype)) != nullptr;
}

bool scatter_supports(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  if (!fits(n, p)) return false;
  const DType t = p.tensors[n.inputs[0]].dtype;
  return n.attrs.get_int("reduction", gs::kReduceNone) == gs::kReduceNone ? bytes_type(dtype_size(t)) != nullptr
                                                                          : arith_type(t) != nullptr;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t d = s.size(); d-- > 1;) st[d - 1] = st[d] * s[d];
  return st;
}

Status get_kernel(ClKernelArgs& a, const std::string& type, const char* fn, cl_kernel* k) {
  const char* src = embedded_kernel_source("gather_scatter");
  if (!src) return internal_error("kernels/gather_scatter.cl is not embedded");
  const std::string idx = a.inputs[1].dtype == DType::kInt64 ? "long" : "int";
  const std::string opts = "-DT=" + type + " -DIDX=" + idx + " -DRED=" + std::to_string(a.attrs().get_int("reduction", 0));
  return a.cl.kernel(src, opts, fn, k).with_context("node '" + a.node.name + "'");
}

Status check_index_dtype(const ClKernelArgs& a) {
  if (a.inputs[1].dtype != DType::kInt32 && a.inputs[1].dtype != DType::kInt64)
    return invalid_plan(a.node.op + ": indices must be int32 or int64");
  return Status::ok();
}

// Rank and axis of the *Elements ops: indices of data's rank, within data but along axis.
Status check_elements(const ClKernelArgs& a, int64_t axis) {
  KILN_TRY(check_index_dtype(a));
  const Shape& d = a.inputs[0].shape;
  const Shape& i = a.inputs[1].shape;
  if (i.size() != d.size() || axis < 0 || axis >= static_cast<int64_t>(d.size()))
    return invalid_plan(a.node.op + ": indices and data ranks or axis do not match");
  for (size_t k = 0; k < d.size(); ++k)
    if (static_cast<int64_t>(k) != axis && i[k] > d[k]) return invalid_plan(a.node.op + ": indices exceed data");
  return Status::ok();
}

Status gather_elements_cl(ClKernelArgs& a) {
  const int64_t axis = a.attrs().get_int("axis", 0);
  KILN_TRY(check_elements(a, axis));
  const ClTensor& out = a.outputs[0];
  if (out.shape != a.inputs[1].shape) return invalid_plan("GatherElements: output does not match the indices");
  const int total = static_cast<int>(out.numel());
  if (total == 0) return Status::ok();
  cl_kernel k;
  KILN_TRY(get_kernel(a, bytes_type(dtype_size(out.dtype)), "gather_elements", &k));
  const Shape& d = a.inputs[0].shape;
  return ClLaunch(a.cl, k, "gather_elements")
      .mem(a.inputs[0].mem).mem(a.inputs[1].mem).mem(out.mem).arg(total).arg(static_cast<cl_int>(d.size()))
      .arg(cl_dims(a.inputs[1].shape)).arg(cl_dims(strides_of(d))).arg(static_cast<cl_int>(axis))
      .arg(static_cast<cl_int>(d[axis]))
      .run1d(total, 64);
}

// GatherND/ScatterND geometry (see runtime/backends/cpu/gather_scatter.cpp).
struct NdGeom {
  int64_t batches = 1, tuples = 1, k = 1, slice = 1, batch_stride = 1;
  std::vector<int64_t> dims, strides;
};

Status nd_geom(const ClKernelArgs& a, int64_t b, NdGeom* g) {
  KILN_TRY(check_index_dtype(a));
  const Shape& d = a.inputs[0].shape;
  const Shape& ind = a.inputs[1].shape;
  const int64_t r = static_cast<int64_t>(d.size()), q = static_cast<int64_t>(ind.size());
  if (q < 1 || b < 0 || b >= std::min(r, q) || ind.back() < 1 || ind.back() > r - b)
    return invalid_plan(a.node.op + ": indices do not fit the data");
  g->k = ind.back();
  for (int64_t i = 0; i < b; ++i) {
    if (d[i] != ind[i]) return invalid_plan(a.node.op + ": batch dims differ");
    g->batches *= d[i];
  }
  for (int64_t i = b; i + 1 < q; ++i) g->tuples *= ind[i];
  const std::vector<int64_t> st = strides_of(d);
  for (int64_t i = b + g->k; i < r; ++i) g->slice *= d[i];
  for (int64_t i = b; i < r; ++i) g->batch_stride *= d[i];
  for (int64_t j = 0; j < g->k; ++j) {
    g->dims.push_back(d[b + j]);
    g->strides.push_back(st[b + j]);
  }
  return Status::ok();
}

Status gather_nd_cl(ClKernelArgs& a) {
  NdGeom g;
  KILN_TRY(nd_geom(a, a.attrs().get_int("batch_dims", 0), &g));
  const ClTensor& out = a.outputs[0];
  if (out.numel() != g.batches * g.tuples * g.slice) return invalid_plan("GatherND: output does not match");
  const int total = static_cast<int>(out.numel());
  if (total == 0) return Status::ok();
  cl_kernel k;
  KILN_TRY(get_kernel(a, bytes_type(dtype_size(out.dtype)), "gather_nd", &k));
  return ClLaunch(a.cl, k, "gather_nd")
      .mem(a.inputs[0].mem).mem(a.inputs[1].mem).mem(out.mem).arg(total).arg(static_cast<cl_int>(g.slice))
      .arg(static_cast<cl_int>(g.tuples)).arg(static_cast<cl_int>(g.batch_stride)).arg(static_cast<cl_int>(g.k))
      .arg(cl_dims(g.dims)).arg(cl_dims(g.strides))
      .run1d(total, 64);
}

// The scatters start from a copy of data (none when running in place) and the element type
// their reduction computes in.
Status scatter_start(ClKernelArgs& a, std::string* type) {
  const ClTensor& data = a.inputs[0];
  const ClTensor& out = a.outputs[0];
  if (out.shape != data.shape || a.inputs[2].dtype != data.dtype) return invalid_plan(a.node.op + ": output or updates do not match data");
  const int64_t red = a.attrs().get_int("reduction", gs::kReduceNone);
  if (red < gs::kReduceNone || red > gs::kReduceMin) return invalid_plan(a.node.op + ": unknown reduction");
  const char* t = red == gs::kReduceNone ? bytes_type(dtype_size(data.dtype)) : arith_type(data.dtype);
  if (!t) return unsupported(a.node.op + ": dtype " + dtype_name(data.dtype) + " with this reduction");
  *type = t;
  if (out.mem == data.mem || out.numel() == 0) return Status::ok();
  return cl_device_copy(a, data.mem, out.mem, static_cast<size_t>(out.numel()) * dtype_size(out.dtype));
}

Status scatter_elements_cl(ClKernelArgs& a) {
  const int64_t axis = a.attrs().get_int("axis", 0);
  KILN_TRY(check_elements(a, axis));
  if (a.inputs[2].shape != a.inputs[1].shape) return invalid_plan("ScatterElements: updates and indices differ in shape");
  std::string type;
  KILN_TRY(scatter_start(a, &type));
  const Shape& u = a.inputs[2].shape;
  if (shape_numel(u) == 0) return Status::ok();
  const int lines = static_cast<int>(shape_numel(u) / u[axis]);
  cl_kernel k;
  KILN_TRY(get_kernel(a, type, "scatter_elements", &k));
  const Shape& d = a.inputs[0].shape;
  return ClLaunch(a.cl, k, "scatter_elements")
      .mem(a.inputs[1].mem).mem(a.inputs[2].mem).mem(a.outputs[0].mem).arg(lines).arg(static_cast<cl_int>(d.size()))
      .arg(cl_dims(u)).arg(cl_dims(strides_of(d))).arg(static_cast<cl_int>(axis)).arg(static_cast<cl_int>(d[axis]))
      .run1d(lines, 64);
}

Status scatter_nd_cl(ClKernelArgs& a) {
  NdGeom g;
  KILN_TRY(nd_geom(a, 0, &g));
  if (a.inputs[2].numel() != g.tuples * g.slice) return invalid_plan("ScatterND: updates do not match indices and data");
  std::string type;
  KILN_TRY(scatter_start(a, &type));
  if (g.slice == 0 || g.tuples == 0) return Status::ok();
  cl_kernel k;
  KILN_TRY(get_kernel(a, type, "scatter_nd", &k));
  return ClLaunch(a.cl, k, "scatter_nd")
      .mem(a.inputs[1].mem).mem(a.inputs[2].mem).mem(a.outputs[0].mem).arg(static_cast<cl_int>(g.slice))
      .arg(static_cast<cl_int>(g.tuples)).arg(static_cast<cl_int>(g.k)).arg(cl_dims(g.dims)).arg(cl_dims(g.strides))
      .run1d(static_cast<size_t>(g.slice), 64);
}

}  // namespace

void register_gather_scatter_opencl(ClRegistry& r) {
  r.add("GatherElements", gather_elements_cl, gather_supports);
  r.add("GatherND", gather_nd_cl, gather_supports);
  r.add("ScatterElements", scatter_elements_cl, scatter_supports);
  r.add("ScatterND", scatter_nd_cl, scatter_supports);
}

}  // namespace kiln
