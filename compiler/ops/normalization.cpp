// Softmax, LogSoftmax, BatchNormalization, InstanceNormalization, GroupNormalization,
// LayerNormalization, and the
// registration of the whole family (reductions: normalization_reduce.cpp, pooling:
// normalization_pool.cpp).
//
// Runtime forms (what the kernels in runtime/backends/*/normalization*.cpp read):
//   Softmax / LogSoftmax      attrs axis (>= 0), coerce_2d (1: pre-13 semantics, normalize over
//                             the flattened dims [axis, rank); 0: over the single dim `axis`)
//   BatchNormalization        inputs X, scale, B, mean, var; attrs epsilon. Parameters hold
//                             either C values (spatial) or C*D1*..*Dn (pre-9 spatial=0)
//   InstanceNormalization     inputs X, scale, B; attrs epsilon
//   GroupNormalization        inputs X, scale, bias; attrs num_groups, epsilon, group_params
//   LayerNormalization        inputs X, Scale[, B]; attrs axis (>= 0), epsilon, output_mask
//                             (bit i: ONNX output i is produced; the plan lists only those)
#include "compiler/ops/normalization_internal.h"

namespace kiln {
namespace {

Status infer_softmax(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  KILN_TRY(c.require_dtype(0, {DType::kFloat32}));
  const Shape& in = c.input_shape(0);
  const int64_t rank = static_cast<int64_t>(in.size());
  const bool coerce_2d = c.version() < 13;
  const int64_t axis_attr = c.attrs().get_int("axis", coerce_2d ? 1 : -1);
  int64_t axis = 0;
  if (rank == 0) {
    // A scalar is a single one-element row: Softmax gives 1, LogSoftmax 0.
    if (axis_attr != 0 && axis_attr != -1) return c.fail("axis " + std::to_string(axis_attr) + " is out of range for a scalar");
  } else if (coerce_2d && axis_attr == rank) {
    // Pre-13 coercion allows axis == rank: every row is a single element.
    axis = rank;
  } else {
    KILN_TRY_CTX(normalize_axis(axis_attr, rank, &axis), c.node().describe());
  }
  Attributes a;
  a.set("axis", axis);
  a.set("coerce_2d", int64_t{coerce_2d ? 1 : 0});
  c.mutable_attrs() = a;
  c.set_output(0, DType::kFloat32, in);
  return Status::ok();
}

// Whether optional output i is requested (the importer leaves omitted outputs null).
bool wants_output(InferContext& c, size_t i) { return i < c.num_outputs() && c.node().outputs[i] != nullptr; }

Status infer_batchnorm(InferContext& c) {
  KILN_TRY(c.require_inputs(5, 5));
  for (size_t i = 0; i < 5; ++i) KILN_TRY(c.require_dtype(i, {DType::kFloat32}));
  if (c.version() < 7 && c.attrs().get_int("is_test", 0) == 0)
    return c.fail_unsupported("training-mode BatchNormalization (is_test=0) is not supported; kiln runs inference only");
  if (c.version() >= 14 && c.attrs().get_int("training_mode", 0) != 0)
    return c.fail_unsupported("training_mode=1 is not supported; kiln runs inference only");
  for (size_t i = 1; i < c.num_outputs(); ++i)
    if (wants_output(c, i))
      return c.fail_unsupported("output " + std::to_string(i) +
                                " (running/saved statistics) exists only in training mode, which kiln does not support");
  const Shape& x = c.input_shape(0);
  if (x.size() < 2) return c.fail("X must have rank >= 2 (N x C x ...), got " + shape_str(x));
  const int64_t channels = x[1];
  int64_t inner = 1;
  for (size_t i = 2; i < x.size(); ++i) inner *= x[i];
  const bool spatial = c.version() >= 9 || c.attrs().get_int("spatial", 1) != 0;
  const int64_t want = spatial ? channels : channels * inner;
  static const char* kNames[] = {"X", "scale", "B", "mean", "var"};
  for (size_t i = 1; i < 5; ++i) {
    if (shape_numel(c.input_shape(i)) != want)
      return c.fail(std::string(kNames[i]) + " has shape " + shape_str(c.input_shape(i)) + ", expected " +
                    std::to_string(want) + " values (" + (spatial ? "one per channel" : "C x D1 x ... for spatial=0") +
                    ") for X of shape " + shape_str(x));
  }
  Attributes a;
  a.set("epsilon", c.attrs().get_float("epsilon", 1e-5f));
  c.mutable_attrs() = a;
  c.set_output(0, DType::kFloat32, x);
  return Status::ok();
}

Status infer_instancenorm(InferContext& c) {
  KILN_TRY(c.require_inputs(3, 3));
  for (size_t i = 0; i < 3; ++i) KILN_TRY(c.require_dtype(i, {DType::kFloat32}));
  const Shape& x = c.input_shape(0);
  if (x.size() < 2) return c.fail("input must have rank >= 2 (N x C x ...), got " + shape_str(x));
  for (size_t i = 1; i < 3; ++i)
    if (c.input_shape(i).size() != 1 || c.input_shape(i)[0] != x[1])
      return c.fail(std::string(i == 1 ? "scale" : "B") + " has shape " + shape_str(c.input_shape(i)) +
                    ", expected [" + std::to_string(x[1]) + "] (one per channel)");
  Attributes a;
  a.set("epsilon", c.attrs().get_float("epsilon", 1e-5f));
  c.mutable_attrs() = a;
  c.set_output(0, DType::kFloat32, x);
  return Status::ok();
}

// GroupNormalization: X [N, C, ...] in num_groups groups of C/num_groups channels, each group
// of each sample normalized over its channels and positions, then scaled and shifted per
// channel (version 21) or per group (version 18, which ONNX deprecated for that). Runtime attrs:
// num_groups, epsilon, group_params (1: scale and bias hold one value per group).
Status infer_groupnorm(InferContext& c) {
  KILN_TRY(c.require_inputs(3, 3));
  for (size_t i = 0; i < 3; ++i) KILN_TRY(c.require_dtype(i, {DType::kFloat32}));
  const Shape& x = c.input_shape(0);
  if (x.size() < 2) return c.fail("input must have rank >= 2 (N x C x ...), got " + shape_str(x));
  if (!c.attrs().has("num_groups")) return c.fail("attribute num_groups is required");
  const int64_t groups = c.attrs().get_int("num_groups", 0);
  if (groups <= 0 || x[1] % groups != 0)
    return c.fail("num_groups " + std::to_string(groups) + " must be positive and divide the " + std::to_string(x[1]) +
                  " channels");
  // stash_type names the precision of the statistics; kiln's are float32 or wider whatever it
  // asks (float16/bfloat16 statistics would only be less exact).
  const int64_t stash = c.attrs().get_int("stash_type", 1);
  const auto st = static_cast<DType>(stash);
  if (st != DType::kFloat32 && st != DType::kFloat16 && st != DType::kBFloat16 && st != DType::kFloat64)
    return c.fail("stash_type " + std::to_string(stash) + " is not a floating-point type");
  const bool per_group = c.version() < 21;
  const int64_t want = per_group ? groups : x[1];
  for (size_t i = 1; i < 3; ++i)
    if (c.input_shape(i).size() != 1 || c.input_shape(i)[0] != want)
      return c.fail(std::string(i == 1 ? "scale" : "bias") + " has shape " + shape_str(c.input_shape(i)) + ", expected [" +
                    std::to_string(want) + "] (one per " + (per_group ? "group" : "channel") + ")");
  Attributes a;
  a.set("num_groups", groups);
  a.set("epsilon", c.attrs().get_float("epsilon", 1e-5f));
  a.set("group_params", int64_t{per_group ? 1 : 0});
  c.mutable_attrs() = a;
  c.set_output(0, DType::kFloat32, x);
  return Status::ok();
}

// Scale and B must map onto the normalized block X.shape[axis:] as a whole (same element
// count after dropping leading 1s) or be a single value; general broadcasting inside the
// block is not implemented.
Status check_layernorm_param(InferContext& c, size_t i, const Shape& x, int64_t axis) {
  const Shape& p = c.input_shape(i);
  const Shape norm(x.begin() + axis, x.end());
  if (shape_numel(p) == 1) return Status::ok();
  // Broadcastable to the block with the same element count means the same memory layout.
  bool ok = shape_numel(p) == shape_numel(norm);
  for (size_t k = 0; ok && k < p.size(); ++k) {
    const int64_t pd = p[p.size() - 1 - k];
    const int64_t nd = k < norm.size() ? norm[norm.size() - 1 - k] : 1;
    ok = pd == nd || pd == 1;
  }
  if (ok) return Status::ok();
  return c.fail_unsupported(std::string(i == 1 ? "Scale" : "B") + " of shape " + shape_str(p) +
                            " must have the normalized shape " + shape_str(norm) +
                            " or be a single value (partial broadcasting is not supported)");
}

Status infer_layernorm(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 3));
  for (size_t i = 0; i < 3; ++i)
    if (c.has_input(i)) KILN_TRY(c.require_dtype(i, {DType::kFloat32}));
  const Shape& x = c.input_shape(0);
  const int64_t rank = static_cast<int64_t>(x.size());
  if (rank == 0) return c.fail("X must have rank >= 1");
  int64_t axis = 0;
  KILN_TRY_CTX(normalize_axis(c.attrs().get_int("axis", -1), rank, &axis), c.node().describe());
  const int64_t stash = c.attrs().get_int("stash_type", 1);
  if (stash != 1)
    return c.fail_unsupported("stash_type " + std::to_string(stash) + " is not supported (only 1, float32)");
  KILN_TRY(check_layernorm_param(c, 1, x, axis));
  if (c.has_input(2)) KILN_TRY(check_layernorm_param(c, 2, x, axis));
  Shape stat(x.begin(), x.begin() + axis);
  stat.resize(x.size(), 1);
  int64_t mask = 1;
  for (size_t i = 1; i < 3; ++i)
    if (wants_output(c, i)) {
      mask |= int64_t{1} << i;
      c.set_output(i, DType::kFloat32, stat);
    }
  Attributes a;
  a.set("axis", axis);
  a.set("epsilon", c.attrs().get_float("epsilon", 1e-5f));
  a.set("output_mask", mask);
  c.mutable_attrs() = a;
  c.set_output(0, DType::kFloat32, x);
  return Status::ok();
}

}  // namespace

void register_normalization_schemas(SchemaRegistry& r) {
  using namespace norm_schema;
  r.add({"Softmax", {1, 11, 13}, infer_softmax}).fp16(Fp16::kCompute);
  r.add({"LogSoftmax", {1, 11, 13}, infer_softmax}).fp16(Fp16::kCompute);
  r.add({"BatchNormalization", {1, 6, 7, 9, 14, 15}, infer_batchnorm}).fp16(Fp16::kCompute);
  r.add({"InstanceNormalization", {1, 6, 22}, infer_instancenorm}).fp16(Fp16::kCompute);
  r.add({"LayerNormalization", {17}, infer_layernorm}).fp16(Fp16::kCompute);
  r.add({"GroupNormalization", {18, 21}, infer_groupnorm}).fp16(Fp16::kCompute);
  r.add({"ReduceMean", {1, 11, 13, 18}, infer_reduce}).fp16(Fp16::kCompute);
  r.add({"ReduceSum", {1, 11, 13}, infer_reduce}).fp16(Fp16::kCompute);
  r.add({"ReduceMax", {1, 11, 12, 13, 18, 20}, infer_reduce}).fp16(Fp16::kCompute);
  r.add({"ReduceMin", {1, 11, 12, 13, 18, 20}, infer_reduce}).fp16(Fp16::kCompute);
  for (const char* op : {"ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"})
    r.add({op, {1, 11, 13, 18}, infer_reduce}).fp16(Fp16::kCompute);
  r.add({"MaxPool", {1, 8, 10, 11, 12, 22}, infer_max_pool}).fp16(Fp16::kCompute).commutes_with_quantize();
  r.add({"AveragePool", {1, 7, 10, 11, 19, 22}, infer_average_pool}).fp16(Fp16::kCompute);
  r.add({"GlobalAveragePool", {1, 22}, infer_global_pool}).fp16(Fp16::kCompute);
  r.add({"GlobalMaxPool", {1, 22}, infer_global_pool}).fp16(Fp16::kCompute);
}

}  // namespace kiln
