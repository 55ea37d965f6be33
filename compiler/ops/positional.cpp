// The positional family: ops whose result depends on each element's position: CumSum (running
// sums along an axis), Trilu (keeps a triangle of the last two dims), OneHot (position == index).
//
// Runtime forms (runtime/backends/*/positional.cpp):
//   CumSum  one input; attrs axis (>= 0), exclusive, reverse
//   Trilu   one input; attrs upper, k (diagonal offset)
//   OneHot  inputs indices, values ([off, on]); attrs depth, axis (>= 0, in the output's rank)
// The scalar inputs that fix shapes or positions (CumSum's axis, Trilu's k, OneHot's depth)
// must be build-time constants and move into attributes.
#include <cmath>
#include <string>

#include "compiler/ops/op_schema.h"

namespace kiln {
namespace {

// A one-element build-time constant input as int64 (depth may be a float tensor).
Status const_scalar(InferContext& c, size_t i, const char* what, int64_t* out) {
  const HostTensor* t = c.const_input(i);
  if (!t) {
    std::vector<int64_t> unused;
    return c.const_ints(i, &unused);  // the "must be known at build time" error naming the input
  }
  if (t->numel() != 1) return c.fail(std::string(what) + " must hold one value, got " + std::to_string(t->numel()));
  const double v = tensor_double_at(t->view(), 0);
  if (!std::isfinite(v)) return c.fail(std::string(what) + " is not finite");
  *out = static_cast<int64_t>(v);
  return Status::ok();
}

Status infer_cumsum(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(c.require_dtype(0, {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt32, DType::kInt64,
                               DType::kUInt32, DType::kUInt64}));
  KILN_TRY(c.require_dtype(1, {DType::kInt32, DType::kInt64}));
  const Shape& x = c.input_shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  if (r == 0) return c.fail("input must have rank >= 1");
  int64_t axis;
  KILN_TRY(const_scalar(c, 1, "axis", &axis));
  KILN_TRY(c.normalize_axis("axis", axis, r, &axis));
  Attributes a;
  a.set("axis", axis);
  a.set("exclusive", int64_t{c.attrs().get_int("exclusive", 0) != 0 ? 1 : 0});
  a.set("reverse", int64_t{c.attrs().get_int("reverse", 0) != 0 ? 1 : 0});
  c.mutable_attrs() = a;
  c.keep_inputs(1);
  c.set_output(0, c.input_dtype(0), x);
  return Status::ok();
}

Status infer_trilu(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 2));
  const Shape& x = c.input_shape(0);
  if (x.size() < 2) return c.fail("input must have rank >= 2, got " + shape_str(x));
  int64_t k = 0;
  if (c.has_input(1)) {
    KILN_TRY(c.require_dtype(1, {DType::kInt64}));
    KILN_TRY(const_scalar(c, 1, "k", &k));
  }
  Attributes a;
  a.set("upper", int64_t{c.attrs().get_int("upper", 1) != 0 ? 1 : 0});
  a.set("k", k);
  c.mutable_attrs() = a;
  c.keep_inputs(1);
  c.set_output(0, c.input_dtype(0), x);
  return Status::ok();
}

Status infer_onehot(InferContext& c) {
  KILN_TRY(c.require_inputs(3, 3));
  const std::initializer_list<DType> numeric = {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt8,
                                                DType::kUInt8,   DType::kInt16,   DType::kUInt16,  DType::kInt32,
                                                DType::kUInt32,  DType::kInt64,   DType::kUInt64};
  KILN_TRY(c.require_dtype(0, numeric));
  KILN_TRY(c.require_dtype(1, numeric));
  if (shape_numel(c.input_shape(2)) != 2)
    return c.fail("values must hold two elements [off_value, on_value], got shape " + shape_str(c.input_shape(2)));
  int64_t depth;
  KILN_TRY(const_scalar(c, 1, "depth", &depth));
  if (depth < 1) return c.fail("depth must be positive, got " + std::to_string(depth));
  const Shape& ind = c.input_shape(0);
  const int64_t out_rank = static_cast<int64_t>(ind.size()) + 1;
  int64_t axis;
  KILN_TRY(c.normalize_axis("axis", c.attrs().get_int("axis", -1), out_rank, &axis));
  Shape out = ind;
  out.insert(out.begin() + axis, depth);
  Attributes a;
  a.set("depth", depth);
  a.set("axis", axis);
  c.mutable_attrs() = a;
  // Runtime inputs: indices, values.
  std::vector<ir::Value*>& in = c.node().inputs;
  in.erase(in.begin() + 1);
  c.set_output(0, c.input_dtype(1), out);
  return Status::ok();
}

}  // namespace

void register_positional_schemas(SchemaRegistry& r) {
  r.add({"CumSum", {11, 14}, infer_cumsum}).fp16(Fp16::kCompute);
  r.add({"Trilu", {14}, infer_trilu}).fp16(Fp16::kMove);
  r.add({"OneHot", {9, 11}, infer_onehot});
}

}  // namespace kiln
