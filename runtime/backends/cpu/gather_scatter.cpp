// CPU GatherElements, GatherND, ScatterElements, ScatterND (runtime forms:
// compiler/ops/gather_scatter.cpp). Gathers and reduction-free scatters move element bytes, so
// every dtype works; scatter reductions compute in the data's type (float32, float64, int32,
// int64; float16 is widened to float32). Indices are checked: an index out of range is an
// error naming the node, the index and its position.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/backends/gather_scatter_attrs.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t d = s.size(); d-- > 1;) st[d - 1] = st[d] * s[d];
  return st;
}

// Index j of an int32/int64 tensor made >= 0, or an error when outside [-n, n).
Status read_index(const CpuKernelArgs& a, const TensorView& ind, int64_t j, int64_t n, int64_t* out) {
  const int64_t v = ind.dtype == DType::kInt64 ? ind.as<int64_t>()[j] : ind.as<int32_t>()[j];
  if (v < -n || v >= n)
    return invalid_argument("node '" + a.node.name + "' (" + a.node.op + "): index " + std::to_string(v) + " (at position " +
                            std::to_string(j) + ") is out of range for a dim of size " + std::to_string(n));
  *out = v < 0 ? v + n : v;
  return Status::ok();
}

Status check_indices_dtype(const CpuKernelArgs& a) {
  if (a.inputs[1].dtype != DType::kInt32 && a.inputs[1].dtype != DType::kInt64)
    return invalid_plan(a.node.op + ": indices must be int32 or int64");
  return Status::ok();
}

// The data offset of element `flat` of an indices-shaped tensor whose coordinate along `axis`
// is replaced by the index it holds (GatherElements, ScatterElements).
Status elements_offset(const CpuKernelArgs& a, const TensorView& ind, int64_t flat, int64_t axis, const Shape& data_shape,
                       const std::vector<int64_t>& data_strides, int64_t* off) {
  int64_t rest = flat, o = 0;
  for (size_t d = ind.shape.size(); d-- > 0;) {
    const int64_t coord = rest % ind.shape[d];
    rest /= ind.shape[d];
    if (static_cast<int64_t>(d) == axis) {
      int64_t i;
      KILN_TRY(read_index(a, ind, flat, data_shape[d], &i));
      o += i * data_strides[d];
    } else {
      o += coord * data_strides[d];
    }
  }
  *off = o;
  return Status::ok();
}

// Shapes of GatherElements/ScatterElements: indices of data's rank, within data but along axis.
Status check_elements(const CpuKernelArgs& a, const TensorView& data, const TensorView& ind, int64_t axis) {
  KILN_TRY(check_indices_dtype(a));
  if (ind.shape.size() != data.shape.size() || axis < 0 || axis >= static_cast<int64_t>(data.shape.size()))
    return invalid_plan(a.node.op + ": indices and data ranks or axis do not match");
  for (size_t d = 0; d < data.shape.size(); ++d)
    if (static_cast<int64_t>(d) != axis && ind.shape[d] > data.shape[d])
      return invalid_plan(a.node.op + ": indices exceed data along dim " + std::to_string(d));
  return Status::ok();
}

Status gather_elements_cpu(const CpuKernelArgs& a) {
  const TensorView& data = a.inputs[0];
  const TensorView& ind = a.inputs[1];
  const TensorView& out = a.outputs[0];
  const int64_t axis = a.attrs().get_int("axis", 0);
  KILN_TRY(check_elements(a, data, ind, axis));
  if (out.shape != ind.shape || out.dtype != data.dtype) return invalid_plan("GatherElements: output does not match");
  const size_t es = dtype_size(data.dtype);
  const std::vector<int64_t> st = strides_of(data.shape);
  const uint8_t* src = static_cast<const uint8_t*>(data.data);
  uint8_t* dst = static_cast<uint8_t*>(out.data);
  for (int64_t j = 0; j < ind.numel(); ++j) {
    int64_t off;
    KILN_TRY(elements_offset(a, ind, j, axis, data.shape, st, &off));
    std::memcpy(dst + j * es, src + off * es, es);
  }
  return Status::ok();
}

// GatherND/ScatterND geometry: `batches` x `tuples` index tuples of k entries; each addresses a
// slice of `slice` elements of data (after the batch dims).
struct NdGeom {
  int64_t batch_dims = 0, batches = 1, tuples = 1, k = 1, slice = 1, batch_stride = 1;
  std::vector<int64_t> dims, strides;  // data dims [b, b + k) and their element strides
};

Status nd_geom(const CpuKernelArgs& a, const TensorView& data, const TensorView& ind, int64_t b, NdGeom* g) {
  KILN_TRY(check_indices_dtype(a));
  const int64_t r = static_cast<int64_t>(data.shape.size()), q = static_cast<int64_t>(ind.shape.size());
  if (q < 1 || b < 0 || b >= std::min(r, q) || ind.shape.back() < 1 || ind.shape.back() > r - b)
    return invalid_plan(a.node.op + ": indices do not fit the data");
  g->batch_dims = b;
  g->k = ind.shape.back();
  for (int64_t d = 0; d < b; ++d) {
    if (data.shape[d] != ind.shape[d]) return invalid_plan(a.node.op + ": batch dims differ");
    g->batches *= data.shape[d];
  }
  for (int64_t d = b; d + 1 < q; ++d) g->tuples *= ind.shape[d];
  const std::vector<int64_t> st = strides_of(data.shape);
  for (int64_t d = b + g->k; d < r; ++d) g->slice *= data.shape[d];
  for (int64_t d = b; d < r; ++d) g->batch_stride *= data.shape[d];
  for (int64_t j = 0; j < g->k; ++j) {
    g->dims.push_back(data.shape[b + j]);
    g->strides.push_back(st[b + j]);
  }
  return Status::ok();
}

// Element offset in data of tuple t (0 <= t < batches * tuples).
Status nd_offset(const CpuKernelArgs& a, const TensorView& ind, const NdGeom& g, int64_t t, int64_t* off) {
  int64_t o = (t / g.tuples) * g.batch_stride;
  for (int64_t j = 0; j < g.k; ++j) {
    int64_t i;
    KILN_TRY(read_index(a, ind, t * g.k + j, g.dims[j], &i));
    o += i * g.strides[j];
  }
  *off = o;
  return Status::ok();
}

Status gather_nd_cpu(const CpuKernelArgs& a) {
  const TensorView& data = a.inputs[0];
  const TensorView& ind = a.inputs[1];
  const TensorView& out = a.outputs[0];
  NdGeom g;
  KILN_TRY(nd_geom(a, data, ind, a.attrs().get_int("batch_dims", 0), &g));
  if (out.numel() != g.batches * g.tuples * g.slice || out.dtype != data.dtype)
    return invalid_plan("GatherND: output does not match");
  const size_t row = static_cast<size_t>(g.slice) * dtype_size(data.dtype);
  const uint8_t* src = static_cast<const uint8_t*>(data.data);
  uint8_t* dst = static_cast<uint8_t*>(out.data);
  for (int64_t t = 0; t < g.batches * g.tuples; ++t) {
    int64_t off;
    KILN_TRY(nd_offset(a, ind, g, t, &off));
    if (row) std::memcpy(dst + t * row, src + off * static_cast<int64_t>(dtype_size(data.dtype)), row);
  }
  return Status::ok();
}

// ---- scatter ----
template <typename T>
void combine(void* dst, const void* src, int64_t reduction) {
  T& d = *static_cast<T*>(dst);
  const T v = *static_cast<const T*>(src);
  switch (reduction) {
    case gs::kReduceAdd: d = static_cast<T>(d + v); break;
    case gs::kReduceMul: d = static_cast<T>(d * v); break;
    // NaN propagates, as numpy.maximum/minimum do.
    case gs::kReduceMax: d = (v > d || v != v) ? v : d; break;
    case gs::kReduceMin: d = (v < d || v != v) ? v : d; break;
    default: d = v; break;
  }
}

using CombineFn = void (*)(void*, const void*, int64_t);

Status combine_fn(const CpuKernelArgs& a, DType t, int64_t reduction, CombineFn* out) {
  if (reduction < gs::kReduceNone || reduction > gs::kReduceMin) return invalid_plan(a.node.op + ": unknown reduction");
  *out = nullptr;  // plain copy of the element's bytes
  if (reduction == gs::kReduceNone) return Status::ok();
  switch (t) {
    case DType::kFloat32: *out = combine<float>; break;
    case DType::kFloat64: *out = combine<double>; break;
    case DType::kInt32: *out = combine<int32_t>; break;
    case DType::kInt64: *out = combine<int64_t>; break;
    default: return unsupported(a.node.op + ": reduction on dtype " + dtype_name(t) + " is not supported");
  }
  return Status::ok();
}

// The output starts as data (unless it already is: in place), then takes the updates in order.
Status scatter_start(const CpuKernelArgs& a) {
  const TensorView& data = a.inputs[0];
  const TensorView& out = a.outputs[0];
  if (out.shape != data.shape || out.dtype != data.dtype || a.inputs[2].dtype != data.dtype)
    return invalid_plan(a.node.op + ": output or updates do not match data");
  if (out.data != data.data && out.bytes()) std::memcpy(out.data, data.data, out.bytes());
  return Status::ok();
}

Status scatter_elements_cpu(const CpuKernelArgs& a) {
  const TensorView& data = a.inputs[0];
  const TensorView& ind = a.inputs[1];
  const TensorView& upd = a.inputs[2];
  const int64_t axis = a.attrs().get_int("axis", 0);
  KILN_TRY(check_elements(a, data, ind, axis));
  if (upd.shape != ind.shape) return invalid_plan("ScatterElements: updates and indices differ in shape");
  const int64_t reduction = a.attrs().get_int("reduction", 0);
  CombineFn fn;
  KILN_TRY(combine_fn(a, data.dtype, reduction, &fn));
  KILN_TRY(scatter_start(a));
  const size_t es = dtype_size(data.dtype);
  const std::vector<int64_t> st = strides_of(data.shape);
  const uint8_t* src = static_cast<const uint8_t*>(upd.data);
  uint8_t* dst = static_cast<uint8_t*>(a.outputs[0].data);
  for (int64_t j = 0; j < ind.numel(); ++j) {
    int64_t off;
    KILN_TRY(elements_offset(a, ind, j, axis, data.shape, st, &off));
    if (fn) fn(dst + off * es, src + j * es, reduction);
    else std::memcpy(dst + off * es, src + j * es, es);
  }
  return Status::ok();
}

Status scatter_nd_cpu(const CpuKernelArgs& a) {
  const TensorView& data = a.inputs[0];
  const TensorView& ind = a.inputs[1];
  const TensorView& upd = a.inputs[2];
  NdGeom g;
  KILN_TRY(nd_geom(a, data, ind, 0, &g));
  if (upd.numel() != g.tuples * g.slice) return invalid_plan("ScatterND: updates do not match indices and data");
  const int64_t reduction = a.attrs().get_int("reduction", 0);
  CombineFn fn;
  KILN_TRY(combine_fn(a, data.dtype, reduction, &fn));
  KILN_TRY(scatter_start(a));
  const int64_t es = static_cast<int64_t>(dtype_size(data.dtype));
  const uint8_t* src = static_cast<const uint8_t*>(upd.data);
  uint8_t* dst = static_cast<uint8_t*>(a.outputs[0].data);
  for (int64_t t = 0; t < g.tuples; ++t) {
    int64_t off;
    KILN_TRY(nd_offset(a, ind, g, t, &off));
    if (!fn) {
      if (g.slice) std::memcpy(dst + off * es, src + t * g.slice * es, static_cast<size_t>(g.slice * es));
      continue;
    }
    for (int64_t s = 0; s < g.slice; ++s) fn(dst + (off + s) * es, src + (t * g.slice + s) * es, reduction);
  }
  return Status::ok();
}

// A scatter may write its output over its data input: each output element starts as the data
// element at the same place, copied before any update lands.
bool scatter_in_place(const Plan&, const PlanNode&, size_t input) { return input == 0; }

}  // namespace

void register_gather_scatter_cpu(CpuRegistry& r) {
  r.add("GatherElements", gather_elements_cpu).arity(2, 1);
  r.add("GatherND", gather_nd_cpu).arity(2, 1);
  // Widened: reductions on float16 data compute in float32 (a plain scatter moves bytes anyway).
  r.add("ScatterElements", scatter_elements_cpu, CpuFloat16::kWidened).arity(3, 1).in_place(scatter_in_place);
  r.add("ScatterND", scatter_nd_cpu, CpuFloat16::kWidened).arity(3, 1).in_place(scatter_in_place);
}

}  // namespace kiln
