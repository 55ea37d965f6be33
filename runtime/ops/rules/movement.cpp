// Rules of the movement family (runtime forms written by compiler/ops/movement*.cpp):
//   Transpose {perm}   Concat {axis}   Split {axis, split}   Slice {starts, steps} (full rank,
//   resolved: the first element read and the step per axis)   Expand {}   Tile {}
//   Pad {pads (2*rank, may be negative), mode_id} (+ optional one-element value input)
//   Gather {axis} (+ int32/int64 indices)   Resize {taps, extrapolation_value} (+ int32 index
//   and float32 weight tables, plan constants: runtime/backends/movement_resize.h)
// Movement kernels copy bytes of the output's element size, so every data operand shares the
// output's dtype.
#include <algorithm>

#include "runtime/backends/movement_resize.h"
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

using rules::kMaxGeometry;

Status transpose_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  std::vector<int64_t> perm;
  KILN_TRY(c.ints_attr("perm", &perm));
  const Shape& x = c.shape(0);
  if (perm.size() != x.size()) return c.fail("perm " + rules::ints_str(perm) + " does not match rank " + std::to_string(x.size()));
  std::vector<bool> seen(x.size(), false);
  Shape out(x.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] < 0 || perm[i] >= c.rank(0) || seen[perm[i]])
      return c.fail("perm " + rules::ints_str(perm) + " is not a permutation");
    seen[perm[i]] = true;
    out[i] = x[perm[i]];
  }
  c.set_output(0, c.dtype(0), out);
  return Status::ok();
}

Status concat_rule(RuleContext& c) {
  if (c.num_inputs() < 1) return c.fail("has no inputs");
  KILN_TRY(c.inputs(c.num_inputs(), c.num_inputs()));
  KILN_TRY(c.outputs(1, 1));
  int64_t axis;
  KILN_TRY(c.int_attr("axis", 0, &axis));
  KILN_TRY(rules::axis_in(c, "axis", axis, c.rank(0), &axis));
  Shape out = c.shape(0);
  out[axis] = 0;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    const Shape& s = c.shape(i);
    if (c.dtype(i) != c.dtype(0)) return c.fail("input " + std::to_string(i) + " differs in dtype from input 0");
    bool ok = s.size() == out.size();
    for (size_t d = 0; ok && d < s.size(); ++d) ok = static_cast<int64_t>(d) == axis || s[d] == out[d];
    if (!ok) return c.fail("input " + std::to_string(i) + " " + shape_str(s) + " does not fit " + shape_str(c.shape(0)) +
                           " along axis " + std::to_string(axis));
    if (!add_ok(out[axis], s[axis], &out[axis])) return c.fail("the concatenated axis overflows");
  }
  c.set_output(0, c.dtype(0), out);
  return Status::ok();
}

Status split_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, c.num_outputs() ? c.num_outputs() : 1));
  int64_t axis;
  std::vector<int64_t> split;
  KILN_TRY(c.int_attr("axis", 0, &axis));
  KILN_TRY(c.ints_attr("split", &split));
  KILN_TRY(rules::axis_in(c, "axis", axis, c.rank(0), &axis));
  if (split.size() != c.num_outputs())
    return c.fail("split " + rules::ints_str(split) + " does not have one size per output (" +
                  std::to_string(c.num_outputs()) + ")");
  int64_t sum = 0;
  for (size_t i = 0; i < split.size(); ++i) {
    if (split[i] < 0 || !add_ok(sum, split[i], &sum)) return c.fail("split " + rules::ints_str(split) + " is invalid");
    Shape s = c.shape(0);
    s[axis] = split[i];
    c.set_output(i, c.dtype(0), s);
  }
  if (sum != c.shape(0)[axis])
    return c.fail("split " + rules::ints_str(split) + " does not add up to axis " + std::to_string(axis) + " of " +
                  shape_str(c.shape(0)));
  return Status::ok();
}

Status slice_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  std::vector<int64_t> starts, steps;
  KILN_TRY(c.ints_attr("starts", &starts));
  KILN_TRY(c.ints_attr("steps", &steps));
  const Shape& x = c.shape(0);
  const Shape& y = c.planned_output(0).shape;
  if (starts.size() != x.size() || steps.size() != x.size() || y.size() != x.size())
    return c.fail("starts " + rules::ints_str(starts) + " and steps " + rules::ints_str(steps) + " do not match rank " +
                  std::to_string(x.size()));
  // The extent of each axis is the plan's (ends are resolved away); what is checked is that
  // every element it reads lies inside the input, with steps no longer than the axis.
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t step = steps[i];
    if (step == 0 || step < -std::max<int64_t>(x[i], 1) || step > std::max<int64_t>(x[i], 1))
      return c.fail("step " + std::to_string(step) + " on axis " + std::to_string(i) + " of " + shape_str(x) +
                    " must be non-zero and no longer than the axis");
    if (y[i] == 0) continue;
    int64_t last;
    if (y[i] < 0 || !mul_ok(y[i] - 1, step, &last) || !add_ok(last, starts[i], &last) || starts[i] < 0 ||
        starts[i] >= x[i] || last < 0 || last >= x[i])
      return c.fail("axis " + std::to_string(i) + ": " + std::to_string(y[i]) + " elements from " +
                    std::to_string(starts[i]) + " in steps of " + std::to_string(step) + " leave the input " +
                    shape_str(x));
  }
  c.set_output(0, c.dtype(0), y);
  return Status::ok();
}

Status expand_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  const Shape& x = c.shape(0);
  const Shape& y = c.planned_output(0).shape;
  Shape b;
  KILN_TRY(rules::broadcast(c, x, y, &b));
  if (b != y) return c.fail("input " + shape_str(x) + " does not expand to " + shape_str(y));
  c.set_output(0, c.dtype(0), y);
  return Status::ok();
}

Status tile_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  const Shape& x = c.shape(0);
  const Shape& y = c.planned_output(0).shape;
  bool ok = y.size() == x.size();
  for (size_t i = 0; ok && i < x.size(); ++i) ok = x[i] == 0 ? y[i] == 0 : y[i] % x[i] == 0;
  if (!ok) return c.fail("output " + shape_str(y) + " is not a whole tiling of " + shape_str(x));
  c.set_output(0, c.dtype(0), y);
  return Status::ok();
}

Status pad_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 2));
  KILN_TRY(c.outputs(1, 1));
  std::vector<int64_t> pads;
  int64_t mode;
  KILN_TRY(c.ints_attr("pads", &pads));
  KILN_TRY(c.int_attr_in("mode_id", 0, 0, 3, &mode));
  const Shape& x = c.shape(0);
  const size_t r = x.size();
  if (pads.size() != 2 * r) return c.fail("pads " + rules::ints_str(pads) + " do not match rank " + std::to_string(r));
  if (c.has_input(1)) {
    int64_t n;
    KILN_TRY(rules::numel(c, c.shape(1), "constant value", &n));
    if (c.dtype(1) != c.dtype(0) || n != 1) return c.fail("the constant value must be one element of the data's dtype");
    if (mode != 0) return c.fail("a constant value needs mode_id 0 (constant)");
  }
  Shape out(r);
  for (size_t d = 0; d < r; ++d) {
    for (int64_t p : {pads[d], pads[r + d]})
      if (p < -kMaxGeometry || p > kMaxGeometry) return c.fail("pads " + rules::ints_str(pads) + " are out of range");
    out[d] = x[d] + pads[d] + pads[r + d];
    if (out[d] < 0) return c.fail("pads " + rules::ints_str(pads) + " remove more than axis " + std::to_string(d) + " holds");
    if (mode != 0 && x[d] == 0 && out[d] > 0) return c.fail("cannot reflect, edge or wrap-pad the empty axis " + std::to_string(d));
  }
  c.set_output(0, c.dtype(0), out);
  return Status::ok();
}

Status gather_rule(RuleContext& c) {
  KILN_TRY(c.inputs(2, 2));
  KILN_TRY(c.outputs(1, 1));
  KILN_TRY(c.dtype_in(1, {DType::kInt32, DType::kInt64}));
  int64_t axis;
  KILN_TRY(c.int_attr("axis", 0, &axis));
  const Shape& x = c.shape(0);
  if (axis < 0 || axis >= c.rank(0)) return c.fail("axis " + std::to_string(axis) + " is out of range for " + shape_str(x));
  // Constant indices are checked once here; others by the kernels at run time.
  if (c.input(1).data) {
    const TensorView v = c.input(1).view();
    const int64_t n = x[axis];
    for (int64_t j = 0, k = v.numel(); j < k; ++j) {
      const int64_t i = v.dtype == DType::kInt64 ? v.as<int64_t>()[j] : v.as<int32_t>()[j];
      if (i < -n || i >= n)
        return c.fail("index " + std::to_string(i) + " is out of range for axis " + std::to_string(axis) + " of size " +
                      std::to_string(n));
    }
  }
  Shape out(x.begin(), x.begin() + axis);
  out.insert(out.end(), c.shape(1).begin(), c.shape(1).end());
  out.insert(out.end(), x.begin() + axis + 1, x.end());
  int64_t n;
  KILN_TRY(rules::numel(c, out, "output", &n));
  c.set_output(0, c.dtype(0), out);
  return Status::ok();
}

Status resize_rule(RuleContext& c) {
  if (c.has_attr("repeats")) {  // nearest by whole factors: no tables, out = in * repeats
    KILN_TRY(c.inputs(1, 1));
    KILN_TRY(c.outputs(1, 1));
    std::vector<int64_t> rep;
    KILN_TRY(c.ints_attr("repeats", &rep));
    const Shape& x = c.shape(0);
    if (rep.size() != x.size()) return c.fail("repeats " + rules::ints_str(rep) + " do not match the input rank");
    Shape y(x.size());
    for (size_t d = 0; d < x.size(); ++d) {
      if (rep[d] < 1 || rep[d] > (1 << 20) || __builtin_mul_overflow(x[d], rep[d], &y[d]))
        return c.fail("repeats " + rules::ints_str(rep) + " must be in [1, 2^20]");
    }
    int64_t n;
    KILN_TRY(rules::numel(c, y, "output", &n));
    c.set_output(0, c.dtype(0), y);
    return Status::ok();
  }
  KILN_TRY(c.inputs(3, 3));
  KILN_TRY(c.outputs(1, 1));
  std::vector<int64_t> taps;
  float extrapolation;
  KILN_TRY(c.ints_attr("taps", &taps));
  KILN_TRY(c.float_attr("extrapolation_value", 0.f, &extrapolation));
  KILN_TRY(c.dtype_is(1, DType::kInt32));
  KILN_TRY(c.dtype_is(2, DType::kFloat32));
  const Shape& x = c.shape(0);
  const Shape& y = c.planned_output(0).shape;
  if (y.size() != x.size()) return c.fail("output " + shape_str(y) + " does not have the input's rank");
  for (size_t d = 0; d < taps.size(); ++d)
    if (taps[d] < 1 || taps[d] > (1 << 20)) return c.fail("taps " + rules::ints_str(taps) + " must be in [1, 2^20]");
  // The kernels index the input through the tables: they must be plan constants, checked here.
  if (!c.input(1).data || !c.input(2).data) return c.fail("the interpolation tables must be plan constants");
  if (shape_numel(x) == 0 && shape_numel(y) > 0) return c.fail("cannot resize an empty tensor to a non-empty one");
  ResizeTables t;
  Status st = resize_tables_from_inputs(c.node(), x, y, c.input(1).view(), c.input(2).view(), &t);
  if (!st) return invalid_plan(st.message());
  c.set_output(0, c.dtype(0), y);
  return Status::ok();
}

}  // namespace

void register_movement_rules(RuleRegistry& r) {
  r.add("Transpose", transpose_rule);
  r.add("Concat", concat_rule);
  r.add("Split", split_rule);
  r.add("Slice", slice_rule);
  r.add("Expand", expand_rule);
  r.add("Tile", tile_rule);
  r.add("Pad", pad_rule);
  r.add("Gather", gather_rule);
  r.add("Resize", resize_rule);
}

}  // namespace kiln
