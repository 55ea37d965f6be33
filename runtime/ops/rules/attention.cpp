// Rule of the attention family (the fused Attention op of compiler/passes/fuse_attention.cpp;
// geometry and attributes in runtime/backends/attention_geometry.h, shared with both kernels):
// Q, K, V and Y of one float dtype (float32, or float16 in FP16 plans), an optional additive
// mask of either, Y = [batch..., Sq, Dv] (or [batch, Sq, heads, Dv] with bshd's Y bit; Q, K and V
// may be one packed tensor, qkv_packed).
#include "runtime/backends/attention_geometry.h"
#include "runtime/ops/op_rules.h"
#include "runtime/ops/quantized_output.h"

namespace kiln {
namespace {

// With a quantized copy of Y (runtime/ops/quantized_output.h) the inputs are Q, K, V, the mask
// (or left out), y_scale, y_zero_point.
Status attention_rule(RuleContext& c) {
  bool quantized;
  KILN_TRY(rules::quantized_output_inputs(c, 3, 4, &quantized));
  KILN_TRY(c.outputs(1 + quantized, 1 + quantized));
  float scale;
  int64_t kt, half_scores, bshd, packed;
  KILN_TRY(c.float_attr(attngeo::kAttrScale, 1.f, &scale));
  KILN_TRY(c.int_attr_in(attngeo::kAttrKTransposed, 0, 0, 1, &kt));
  KILN_TRY(c.int_attr_in(attngeo::kAttrHalfScores, 0, 0, 1, &half_scores));
  KILN_TRY(c.int_attr_in(attngeo::kAttrBshd, 0, 0, attngeo::kBshdAll, &bshd));
  KILN_TRY(c.int_attr_in(attngeo::kAttrQkvPacked, 0, 0, 1, &packed));
  KILN_TRY(c.dtype_in(0, {DType::kFloat32, DType::kFloat16}));
  for (size_t i = 1; i < 3; ++i) KILN_TRY(c.dtype_is(i, c.dtype(0)));
  const bool has_mask = c.has_input(attngeo::kMaskInput);
  if (has_mask) KILN_TRY(c.dtype_in(attngeo::kMaskInput, {DType::kFloat32, DType::kFloat16}));
  const Shape& q = c.shape(0);
  if (q.size() < 2 || q.size() > 4) return c.fail("Q must have rank 2 to 4, got " + shape_str(q));
  if (bshd && q.size() != 4) return c.fail("bshd needs rank-4 operands, got Q " + shape_str(q));
  const Shape y = attngeo::output_shape(q, c.shape(2).empty() ? 0 : c.shape(2).back(), c.node().attrs);
  attngeo::Geometry g;
  Status st = attngeo::geometry(q, c.shape(1), c.shape(2), has_mask ? &c.shape(attngeo::kMaskInput) : nullptr, y,
                                c.node().attrs, &g);
  if (!st) return c.fail(st.message());
  c.set_output(0, c.dtype(0), y);
  return quantized ? rules::quantized_output_rule(c, 6, 1, y) : Status::ok();
}

}  // namespace

void register_attention_rules(RuleRegistry& r) { r.add(attngeo::kOp, attention_rule); }

}  // namespace kiln
