// The gather_scatter family: GatherElements, GatherND, ScatterElements (and its deprecated
// name Scatter), ScatterND.
//
// Runtime forms (runtime/backends/*/gather_scatter.cpp):
//   GatherElements   inputs data, indices (int32/int64, same rank); attrs axis (>= 0)
//   GatherND         inputs data, indices (int32/int64, last dim k); attrs batch_dims
//   ScatterElements  inputs data, indices, updates; attrs axis (>= 0), reduction (kReduce*)
//   ScatterND        inputs data, indices, updates; attrs reduction (kReduce*)
// Indices may be negative (counted from the end of their axis). Build-time constant indices
// are range-checked here; the CPU kernels check them at run time (the OpenCL kernels cannot
// fail: an out-of-range index reads 0 or writes nothing).
#include <string>

#include "compiler/ops/op_schema.h"
#include "runtime/backends/gather_scatter_attrs.h"

namespace kiln {
namespace {

const std::initializer_list<DType> kIndexTypes = {DType::kInt32, DType::kInt64};

// Checks every element of a constant index input against dims[axis_of(j)].
template <typename AxisSize>
Status check_const_indices(InferContext& c, size_t i, AxisSize axis_size) {
  const HostTensor* t = c.const_input(i);
  if (!t) return Status::ok();
  for (int64_t j = 0; j < t->numel(); ++j) {
    const int64_t v = tensor_int_at(t->view(), j);
    const int64_t n = axis_size(j);
    if (v < -n || v >= n)
      return c.fail("index " + std::to_string(v) + " (at position " + std::to_string(j) + ") is out of range for a dim of size " +
                    std::to_string(n));
  }
  return Status::ok();
}

// The reduction attribute of ScatterElements/ScatterND (from version 16; max/min from 18).
Status read_reduction(InferContext& c, int64_t* code) {
  const std::string r = c.attrs().get_string("reduction", "none");
  *code = gs::reduction_code(r);
  if (*code < 0 || (*code >= gs::kReduceMax && c.version() < 18) || (*code != gs::kReduceNone && c.version() < 16))
    return c.fail("reduction \"" + r + "\" is not defined at this version (none, add, mul; max and min from version 18)");
  if (*code != gs::kReduceNone)
    KILN_TRY(c.require_dtype(0, {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt32, DType::kInt64}));
  return Status::ok();
}

// Indices of the same rank as data, no larger than data along every dim but `axis`.
Status check_elements_shapes(InferContext& c, int64_t axis) {
  const Shape& d = c.input_shape(0);
  const Shape& ind = c.input_shape(1);
  if (ind.size() != d.size())
    return c.fail("indices have rank " + std::to_string(ind.size()) + ", data " + std::to_string(d.size()) + " (they must match)");
  for (size_t k = 0; k < d.size(); ++k)
    if (static_cast<int64_t>(k) != axis && ind[k] > d[k])
      return c.fail("indices of shape " + shape_str(ind) + " exceed data of shape " + shape_str(d) + " along dim " +
                    std::to_string(k));
  const int64_t n = d.empty() ? 0 : d[axis];
  return check_const_indices(c, 1, [n](int64_t) { return n; });
}

Status infer_gather_elements(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(c.require_dtype(1, kIndexTypes));
  const int64_t r = static_cast<int64_t>(c.input_shape(0).size());
  if (r == 0) return c.fail("data must have rank >= 1");
  int64_t axis;
  KILN_TRY(c.normalize_axis("axis", c.attrs().get_int("axis", 0), r, &axis));
  KILN_TRY(check_elements_shapes(c, axis));
  Attributes a;
  a.set("axis", axis);
  c.mutable_attrs() = a;
  c.set_output(0, c.input_dtype(0), c.input_shape(1));
  return Status::ok();
}

Status infer_scatter_elements(InferContext& c) {
  KILN_TRY(c.require_inputs(3, 3));
  KILN_TRY(c.require_dtype(1, kIndexTypes));
  if (c.input_dtype(2) != c.input_dtype(0))
    return c.fail("updates have dtype " + dtype_name(c.input_dtype(2)) + ", data " + dtype_name(c.input_dtype(0)));
  if (c.input_shape(2) != c.input_shape(1))
    return c.fail("updates of shape " + shape_str(c.input_shape(2)) + " differ from indices of shape " +
                  shape_str(c.input_shape(1)));
  const int64_t r = static_cast<int64_t>(c.input_shape(0).size());
  if (r == 0) return c.fail("data must have rank >= 1");
  if (c.node().op_type == "Scatter" && c.version() >= 11)
    return c.fail("Scatter is deprecated from opset 11 (ScatterElements replaces it)");
  int64_t axis, reduction = gs::kReduceNone;
  KILN_TRY(c.normalize_axis("axis", c.attrs().get_int("axis", 0), r, &axis));
  if (c.node().op_type == "ScatterElements") KILN_TRY(read_reduction(c, &reduction));
  KILN_TRY(check_elements_shapes(c, axis));
  Attributes a;
  a.set("axis", axis);
  a.set("reduction", reduction);
  c.mutable_attrs() = a;
  c.set_runtime_op("ScatterElements");
  c.set_output(0, c.input_dtype(0), c.input_shape(0));
  return Status::ok();
}

// data [r], indices [..., k]: each index tuple addresses data dims [b, b + k) (b = batch_dims).
Status check_nd(InferContext& c, int64_t b, int64_t* k_out) {
  const Shape& d = c.input_shape(0);
  const Shape& ind = c.input_shape(1);
  const int64_t r = static_cast<int64_t>(d.size()), q = static_cast<int64_t>(ind.size());
  if (r < 1 || q < 1) return c.fail("data and indices must have rank >= 1, got " + shape_str(d) + " and " + shape_str(ind));
  if (b < 0 || b >= std::min(r, q))
    return c.fail("batch_dims " + std::to_string(b) + " must be less than both ranks (" + std::to_string(r) + ", " +
                  std::to_string(q) + ")");
  for (int64_t i = 0; i < b; ++i)
    if (d[i] != ind[i])
      return c.fail("batch dim " + std::to_string(i) + " differs: data " + shape_str(d) + ", indices " + shape_str(ind));
  const int64_t k = ind.back();
  if (k < 1 || k > r - b)
    return c.fail("the last dim of indices (" + std::to_string(k) + ") must be in [1, " + std::to_string(r - b) + "]");
  *k_out = k;
  return check_const_indices(c, 1, [&d, b, k](int64_t j) { return d[b + j % k]; });
}

Status infer_gather_nd(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(c.require_dtype(1, kIndexTypes));
  const int64_t b = c.version() >= 12 ? c.attrs().get_int("batch_dims", 0) : 0;
  int64_t k;
  KILN_TRY(check_nd(c, b, &k));
  const Shape& d = c.input_shape(0);
  const Shape& ind = c.input_shape(1);
  Shape out(ind.begin(), ind.end() - 1);
  out.insert(out.end(), d.begin() + b + k, d.end());
  Attributes a;
  a.set("batch_dims", b);
  c.mutable_attrs() = a;
  c.set_output(0, c.input_dtype(0), out);
  return Status::ok();
}

Status infer_scatter_nd(InferContext& c) {
  KILN_TRY(c.require_inputs(3, 3));
  KILN_TRY(c.require_dtype(1, kIndexTypes));
  if (c.input_dtype(2) != c.input_dtype(0))
    return c.fail("updates have dtype " + dtype_name(c.input_dtype(2)) + ", data " + dtype_name(c.input_dtype(0)));
  int64_t k, reduction;
  KILN_TRY(check_nd(c, 0, &k));
  KILN_TRY(read_reduction(c, &reduction));
  const Shape& d = c.input_shape(0);
  const Shape& ind = c.input_shape(1);
  Shape want(ind.begin(), ind.end() - 1);
  want.insert(want.end(), d.begin() + k, d.end());
  if (c.input_shape(2) != want)
    return c.fail("updates have shape " + shape_str(c.input_shape(2)) + ", expected " + shape_str(want) +
                  " (indices.shape[:-1] + data.shape[k:])");
  Attributes a;
  a.set("reduction", reduction);
  c.mutable_attrs() = a;
  c.set_output(0, c.input_dtype(0), d);
  return Status::ok();
}

}  // namespace

// Data movement: float16 tensors pass through the byte kernels (reductions widen on the CPU).
void register_gather_scatter_schemas(SchemaRegistry& r) {
  r.add({"GatherElements", {11, 13}, infer_gather_elements}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"GatherND", {11, 12, 13}, infer_gather_nd}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"ScatterElements", {11, 13, 16, 18}, infer_scatter_elements}).fp16(Fp16::kMove);
  r.add({"Scatter", {9, 11}, infer_scatter_elements}).fp16(Fp16::kMove);
  r.add({"ScatterND", {11, 13, 16, 18}, infer_scatter_nd}).fp16(Fp16::kMove);
}

}  // namespace kiln
