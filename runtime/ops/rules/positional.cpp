// Rules of the positional family (runtime forms written by compiler/ops/positional.cpp):
//   CumSum (x) {axis, exclusive, reverse}   Trilu (x) {upper, k}
//   OneHot (indices, values) {depth, axis} -> values' dtype, depth inserted at axis
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

Status cumsum_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  KILN_TRY(c.dtype_in(0, {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt32, DType::kInt64,
                          DType::kUInt32, DType::kUInt64}));
  int64_t axis, flag;
  KILN_TRY(c.int_attr("axis", 0, &axis));
  KILN_TRY(c.int_attr_in("exclusive", 0, 0, 1, &flag));
  KILN_TRY(c.int_attr_in("reverse", 0, 0, 1, &flag));
  if (axis < 0 || axis >= c.rank(0)) return c.fail("axis " + std::to_string(axis) + " is out of range for " + shape_str(c.shape(0)));
  c.set_output(0, c.dtype(0), c.shape(0));
  return Status::ok();
}

Status trilu_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  int64_t upper, k;
  KILN_TRY(c.int_attr_in("upper", 1, 0, 1, &upper));
  // The kernel compares j - i with k: beyond +-2^62 every element is kept or none, so no wider
  // value is needed and none can overflow the comparison's operands.
  KILN_TRY(c.int_attr_in("k", 0, -(int64_t{1} << 62), int64_t{1} << 62, &k));
  if (c.rank(0) < 2) return c.fail("input must have rank >= 2, got " + shape_str(c.shape(0)));
  if (!dtype_is_storable(c.dtype(0))) return c.fail("input has dtype " + dtype_name(c.dtype(0)));
  c.set_output(0, c.dtype(0), c.shape(0));
  return Status::ok();
}

Status onehot_rule(RuleContext& c) {
  KILN_TRY(c.inputs(2, 2));
  KILN_TRY(c.outputs(1, 1));
  int64_t depth, axis;
  KILN_TRY(c.int_attr("depth", 0, &depth));
  KILN_TRY(c.int_attr("axis", 0, &axis));
  // Indices are numbers; the values are copied as bytes, so any stored dtype (bool included).
  if (c.dtype(0) == DType::kBool || !dtype_is_storable(c.dtype(0)) || dtype_size(c.dtype(0)) == 0)
    return c.fail("indices have dtype " + dtype_name(c.dtype(0)) + ", not a number");
  if (!dtype_is_storable(c.dtype(1)) || dtype_size(c.dtype(1)) == 0)
    return c.fail("values have dtype " + dtype_name(c.dtype(1)) + ", which a plan cannot store");
  int64_t values;
  KILN_TRY(rules::numel(c, c.shape(1), "values", &values));
  if (values != 2) return c.fail("values must hold [off_value, on_value], got " + shape_str(c.shape(1)));
  if (depth < 1) return c.fail("depth must be positive, got " + std::to_string(depth));
  const Shape& ind = c.shape(0);
  if (axis < 0 || axis > c.rank(0)) return c.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(c.rank(0) + 1));
  Shape out = ind;
  out.insert(out.begin() + axis, depth);
  int64_t n;
  KILN_TRY(rules::numel(c, out, "output", &n));
  c.set_output(0, c.dtype(1), out);
  return Status::ok();
}

}  // namespace

void register_positional_rules(RuleRegistry& r) {
  r.add("CumSum", cumsum_rule);
  r.add("Trilu", trilu_rule);
  r.add("OneHot", onehot_rule);
}

}  // namespace kiln
