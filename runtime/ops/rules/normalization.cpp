// Rules of the normalization family (runtime forms written by compiler/ops/normalization*.cpp):
//   Softmax/LogSoftmax {axis, coerce_2d}   BatchNormalization {epsilon}
//   InstanceNormalization {epsilon}
//   LayerNormalization {axis, epsilon, output_mask[, quantized_output, saturate]}
//   GroupNormalization {num_groups, epsilon, group_params}
//   ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp {axes (sorted, unique), keepdims}
//   MaxPool {kernel_shape, strides, dilations, pads, storage_order, ceil_mode, channels_last}
//   AveragePool {kernel_shape, strides, dilations, pads, count_include_pad, ceil_mode}
// Float operands of one node share one dtype: float32, or float16 after --precision fp16 (the
// OpenCL kernels pick half storage from the output's dtype, the CPU widens every operand).
#include <algorithm>

#include "runtime/ops/channels_last.h"
#include "runtime/ops/op_rules.h"
#include "runtime/ops/quantized_output.h"

namespace kiln {
namespace {

using rules::kMaxGeometry;

// Every present input (of the first `count`) has the dtype of input 0, which is float32 or float16.
Status same_float(RuleContext& c, DType* dt, size_t count = SIZE_MAX) {
  KILN_TRY(c.dtype_in(0, {DType::kFloat32, DType::kFloat16}));
  *dt = c.dtype(0);
  for (size_t i = 1; i < std::min(count, c.num_inputs()); ++i)
    if (c.has_input(i) && c.dtype(i) != *dt)
      return c.fail("input " + std::to_string(i) + " is " + dtype_name(c.dtype(i)) + " but input 0 is " +
                    dtype_name(*dt));
  return Status::ok();
}

Status softmax_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  DType dt;
  KILN_TRY(same_float(c, &dt));
  int64_t axis, coerce;
  const int64_t rank = c.rank(0);
  KILN_TRY(c.int_attr_in("coerce_2d", 0, 0, 1, &coerce));
  // A scalar has axis 0; opset < 13 (coerce_2d) may name the rank itself (one row of everything).
  KILN_TRY(c.int_attr_in("axis", 0, 0, std::max<int64_t>(rank - (coerce ? 0 : 1), 0), &axis));
  c.set_output(0, dt, c.shape(0));
  return Status::ok();
}

Status batchnorm_rule(RuleContext& c) {
  KILN_TRY(c.inputs(5, 5));
  KILN_TRY(c.outputs(1, 1));
  DType dt;
  KILN_TRY(same_float(c, &dt));
  float eps;
  KILN_TRY(c.float_attr("epsilon", 1e-5f, &eps));
  const Shape& x = c.shape(0);
  if (x.size() < 2) return c.fail("X must have rank >= 2, got " + shape_str(x));
  int64_t total, per_channel = x[1];
  KILN_TRY(rules::numel(c, x, "X", &total));
  // Parameters are one per channel, or one per (channel, position) for spatial=0.
  const int64_t nc = x[0] * x[1];
  const int64_t per_position = nc ? total / x[0] : 0;
  for (size_t i = 1; i < 5; ++i) {
    int64_t n;
    KILN_TRY(rules::numel(c, c.shape(i), "parameter", &n));
    if (n != per_channel && n != per_position)
      return c.fail("parameter input " + std::to_string(i) + " has " + std::to_string(n) + " values; X " +
                    shape_str(x) + " needs " + std::to_string(per_channel) + " (or " + std::to_string(per_position) +
                    ")");
    if (c.shape(i) != c.shape(1)) return c.fail("parameter inputs differ in shape");
  }
  c.set_output(0, dt, x);
  return Status::ok();
}

Status instancenorm_rule(RuleContext& c) {
  KILN_TRY(c.inputs(3, 3));
  KILN_TRY(c.outputs(1, 1));
  DType dt;
  KILN_TRY(same_float(c, &dt));
  float eps;
  KILN_TRY(c.float_attr("epsilon", 1e-5f, &eps));
  const Shape& x = c.shape(0);
  if (x.size() < 2) return c.fail("input must have rank >= 2, got " + shape_str(x));
  for (size_t i = 1; i < 3; ++i)
    if (c.shape(i) != Shape{x[1]})
      return c.fail("input " + std::to_string(i) + " has shape " + shape_str(c.shape(i)) + ", expected [" +
                    std::to_string(x[1]) + "]");
  c.set_output(0, dt, x);
  return Status::ok();
}

// With a quantized copy of Y (runtime/ops/quantized_output.h) the inputs are X, Scale, B (or
// left out), y_scale, y_zero_point.
Status layernorm_rule(RuleContext& c) {
  bool quantized;
  KILN_TRY(rules::quantized_output_inputs(c, 2, 3, &quantized));
  DType dt;
  KILN_TRY(same_float(c, &dt, quantized ? 3 : c.num_inputs()));
  const Shape& x = c.shape(0);
  const int64_t rank = c.rank(0);
  if (rank == 0) return c.fail("X must have rank >= 1");
  int64_t axis, mask;
  float eps;
  KILN_TRY(c.int_attr_in("axis", 0, 0, rank - 1, &axis));
  KILN_TRY(c.float_attr("epsilon", 1e-5f, &eps));
  KILN_TRY(c.int_attr_in("output_mask", 1, 1, 7, &mask));
  if (!(mask & 1)) return c.fail("output_mask must include output 0");
  const size_t produced = static_cast<size_t>((mask & 1) + (mask >> 1 & 1) + (mask >> 2 & 1)) + (quantized ? 1 : 0);
  KILN_TRY(c.outputs(produced, produced));
  int64_t row;
  KILN_TRY(rules::numel(c, Shape(x.begin() + axis, x.end()), "normalized shape", &row));
  for (size_t i = 1; i < 3; ++i) {
    if (!c.has_input(i)) continue;
    int64_t n;
    KILN_TRY(rules::numel(c, c.shape(i), "parameter", &n));
    if (n != 1 && n != row)
      return c.fail("input " + std::to_string(i) + " has " + std::to_string(n) + " values; the normalized shape has " +
                    std::to_string(row));
  }
  c.set_output(0, dt, x);
  Shape stat(x.begin(), x.begin() + axis);
  stat.resize(x.size(), 1);
  size_t slot = 1;
  for (int bit = 1; bit < 3; ++bit)
    if (mask >> bit & 1) c.set_output(slot++, dt, stat);
  return quantized ? rules::quantized_output_rule(c, 5, slot, x) : Status::ok();
}

// GroupNormalization {num_groups, epsilon, group_params}: scale and bias hold one value per
// group (group_params 1, opset 18) or per channel.
Status groupnorm_rule(RuleContext& c) {
  KILN_TRY(c.inputs(3, 3));
  KILN_TRY(c.outputs(1, 1));
  DType dt;
  KILN_TRY(same_float(c, &dt));
  int64_t groups, per_group;
  float eps;
  KILN_TRY(c.int_attr("num_groups", 0, &groups));
  KILN_TRY(c.int_attr_in("group_params", 0, 0, 1, &per_group));
  KILN_TRY(c.float_attr("epsilon", 1e-5f, &eps));
  const Shape& x = c.shape(0);
  if (x.size() < 2) return c.fail("input must have rank >= 2, got " + shape_str(x));
  if (groups < 1 || x[1] % groups) return c.fail("num_groups " + std::to_string(groups) + " does not divide the " +
                                                 std::to_string(x[1]) + " channels");
  const Shape want = {per_group ? groups : x[1]};
  for (size_t i = 1; i < 3; ++i)
    if (c.shape(i) != want) return c.fail("input " + std::to_string(i) + " must be " + shape_str(want));
  c.set_output(0, dt, x);
  return Status::ok();
}

Status reduce_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  KILN_TRY(c.dtype_in(0, {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt32, DType::kInt64}));
  std::vector<int64_t> axes;
  int64_t keepdims;
  KILN_TRY(c.ints_attr("axes", &axes));
  KILN_TRY(c.int_attr_in("keepdims", 1, 0, 1, &keepdims));
  const Shape& in = c.shape(0);
  for (size_t i = 0; i < axes.size(); ++i)
    if (axes[i] < 0 || axes[i] >= c.rank(0) || (i && axes[i] <= axes[i - 1]))
      return c.fail("axes " + rules::ints_str(axes) + " must be ascending, unique and within rank " +
                    std::to_string(c.rank(0)));
  Shape out;
  for (int64_t d = 0; d < c.rank(0); ++d) {
    const bool reduced = std::binary_search(axes.begin(), axes.end(), d);
    if (!reduced) out.push_back(in[d]);
    else if (keepdims) out.push_back(1);
  }
  c.set_output(0, c.dtype(0), out);
  return Status::ok();
}

// Output extent of one pooled axis, or false when the values overflow or the window does not
// fit. ceil_mode keeps the last partial window if it starts inside the input or its begin pad.
bool pooled_extent(int64_t x, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe, bool ceil_mode,
                   int64_t* out) {
  int64_t eff, span;
  if (!mul_ok(k - 1, d, &eff) || !add_ok(eff, 1, &eff)) return false;
  if (!add_ok(x, pb, &span) || !add_ok(span, pe, &span) || span > kMaxGeometry) return false;
  span -= eff;
  if (span < 0) return false;
  int64_t o = span / s + 1;
  if (ceil_mode && span % s) {
    ++o;
    if ((o - 1) * s >= x + pb) --o;
  }
  *out = o;
  return true;
}

Status pool_rule(RuleContext& c) {
  const bool is_max = c.node().op == "MaxPool";
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, is_max ? 2 : 1));
  int64_t last;  // runtime/ops/channels_last.h
  KILN_TRY(c.int_attr_in(kAttrChannelsLast, 0, 0, is_max ? 1 : 0, &last));
  if (last && c.num_outputs() > 1) return c.fail("a channels_last MaxPool has no Indices output");
  if (is_max)
    KILN_TRY(c.dtype_in(0, {DType::kFloat32, DType::kFloat16, DType::kInt8, DType::kUInt8}));
  else
    KILN_TRY(c.dtype_in(0, {DType::kFloat32, DType::kFloat16}));
  const Shape x = last ? channels_first_shape(c.shape(0)) : c.shape(0);
  const int64_t nsp = c.rank(0) - 2;
  if (nsp < 1 || nsp > 3) return c.fail("X must be N x C x (1 to 3 spatial dims), got " + shape_str(x));
  std::vector<int64_t> k, s, d, p;
  KILN_TRY(c.ints_attr("kernel_shape", &k));
  KILN_TRY(c.ints_attr("strides", &s));
  KILN_TRY(c.ints_attr("dilations", &d));
  KILN_TRY(c.ints_attr("pads", &p));
  int64_t ceil_mode, flag;
  KILN_TRY(c.int_attr_in("ceil_mode", 0, 0, 1, &ceil_mode));
  KILN_TRY(c.int_attr_in(is_max ? "storage_order" : "count_include_pad", 0, 0, 1, &flag));
  const size_t n = static_cast<size_t>(nsp);
  if (k.size() != n || s.size() != n || d.size() != n || p.size() != 2 * n)
    return c.fail("kernel_shape, strides, dilations and pads do not match the " + std::to_string(nsp) +
                  " spatial dims of X " + shape_str(x));
  Shape out = {x[0], x[1]};
  for (size_t i = 0; i < n; ++i) {
    if (k[i] < 1 || s[i] < 1 || d[i] < 1 || k[i] > kMaxGeometry || s[i] > kMaxGeometry || d[i] > kMaxGeometry)
      return c.fail("kernel_shape " + rules::ints_str(k) + ", strides " + rules::ints_str(s) + " and dilations " +
                    rules::ints_str(d) + " must be in [1, 2^31)");
    if (p[i] < 0 || p[i + n] < 0 || p[i] > kMaxGeometry || p[i + n] > kMaxGeometry)
      return c.fail("pads " + rules::ints_str(p) + " must be in [0, 2^31)");
    int64_t o;
    if (!pooled_extent(x[2 + i], k[i], s[i], d[i], p[i], p[i + n], ceil_mode != 0, &o))
      return c.fail("window " + rules::ints_str(k) + " (dilations " + rules::ints_str(d) + ", pads " +
                    rules::ints_str(p) + ") does not fit X " + shape_str(x));
    out.push_back(o);
  }
  c.set_output(0, c.dtype(0), last ? channels_last_shape(out) : out);
  if (c.num_outputs() > 1) c.set_output(1, DType::kInt64, out);
  return Status::ok();
}

}  // namespace

void register_normalization_rules(RuleRegistry& r) {
  r.add("Softmax", softmax_rule);
  r.add("LogSoftmax", softmax_rule);
  r.add("BatchNormalization", batchnorm_rule);
  r.add("InstanceNormalization", instancenorm_rule);
  r.add("LayerNormalization", layernorm_rule);
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                         "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"})
    r.add(op, reduce_rule);
  r.add("GroupNormalization", groupnorm_rule);
  r.add("MaxPool", pool_rule);
  r.add("AveragePool", pool_rule);
}

}  // namespace kiln
