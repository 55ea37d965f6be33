// Rules of the ranking family (runtime forms written by compiler/ops/ranking.cpp):
//   ArgMax/ArgMin {axis, keepdims, select_last_index} -> int64
//   TopK (x) {axis, k, largest} -> (values, int64 indices)
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

Status rankable(RuleContext& c) {
  return c.dtype_in(0, {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt8, DType::kUInt8, DType::kInt16,
                        DType::kInt32, DType::kInt64});
}

Status arg_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  KILN_TRY(rankable(c));
  int64_t axis, keepdims, last;
  KILN_TRY(c.int_attr("axis", 0, &axis));
  KILN_TRY(c.int_attr_in("keepdims", 1, 0, 1, &keepdims));
  KILN_TRY(c.int_attr_in("select_last_index", 0, 0, 1, &last));
  const Shape& x = c.shape(0);
  if (axis < 0 || axis >= c.rank(0)) return c.fail("axis " + std::to_string(axis) + " is out of range for " + shape_str(x));
  if (x[axis] == 0) return c.fail("cannot rank over the empty axis " + std::to_string(axis));
  Shape out;
  for (int64_t d = 0; d < c.rank(0); ++d)
    if (d != axis) out.push_back(x[d]);
    else if (keepdims) out.push_back(1);
  c.set_output(0, DType::kInt64, out);
  return Status::ok();
}

Status topk_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(2, 2));
  KILN_TRY(rankable(c));
  int64_t axis, k, largest;
  KILN_TRY(c.int_attr("axis", -1, &axis));
  KILN_TRY(c.int_attr("k", 0, &k));
  KILN_TRY(c.int_attr_in("largest", 1, 0, 1, &largest));
  const Shape& x = c.shape(0);
  if (axis < 0 || axis >= c.rank(0)) return c.fail("axis " + std::to_string(axis) + " is out of range for " + shape_str(x));
  if (k < 0 || k > x[axis]) return c.fail("k = " + std::to_string(k) + " is out of range for an axis of " + std::to_string(x[axis]));
  Shape out = x;
  out[axis] = k;
  c.set_output(0, c.dtype(0), out);
  c.set_output(1, DType::kInt64, out);
  return Status::ok();
}

}  // namespace

void register_ranking_rules(RuleRegistry& r) {
  r.add("ArgMax", arg_rule);
  r.add("ArgMin", arg_rule);
  r.add("TopK", topk_rule);
}

}  // namespace kiln
