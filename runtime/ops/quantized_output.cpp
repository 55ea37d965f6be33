#include "runtime/ops/quantized_output.h"

#include <string>

#include "runtime/core/float8.h"

namespace kiln {

bool quantized_output(const PlanNode& node, QuantizedOutput* q) {
  if (node.attrs.get_int("quantized_output", 0) != 1 || node.inputs.size() < 2 || node.outputs.size() < 2) return false;
  q->scale_input = node.inputs.size() - 2;
  q->zero_point_input = node.inputs.size() - 1;
  q->output = node.outputs.size() - 1;
  q->saturate = node.attrs.get_int("saturate", 1) != 0;
  return true;
}

PlanNode own_operands(const PlanNode& node) {
  PlanNode own = node;
  QuantizedOutput q;
  if (quantized_output(node, &q)) {
    own.inputs.resize(q.scale_input);
    own.outputs.resize(q.output);
  }
  return own;
}

bool quantized_output_dtype(DType t) { return t == DType::kInt8 || t == DType::kUInt8 || float8_is_supported(t); }

namespace rules {

Status quantized_output_inputs(RuleContext& c, size_t required, size_t own, bool* on) {
  int64_t q, saturate;
  KILN_TRY(c.int_attr_in("quantized_output", 0, 0, 1, &q));
  *on = q == 1;
  if (!*on) return c.inputs(required, own);
  KILN_TRY(c.int_attr_in("saturate", 1, 0, 1, &saturate));
  if (c.num_inputs() != own + 2)
    return c.fail("has " + std::to_string(c.num_inputs()) + " inputs; with a quantized output it takes " +
                  std::to_string(own + 2) + " (optional ones left empty, then y_scale and y_zero_point)");
  return c.inputs(required, own + 2);
}

Status quantized_output_rule(RuleContext& c, size_t inputs, size_t slot, const Shape& shape) {
  const size_t s = inputs - 2, z = inputs - 1;
  KILN_TRY(c.dtype_is(s, DType::kFloat32));
  if (!c.has_input(z)) return c.fail("the quantized output's zero point (input " + std::to_string(z) + ") is missing");
  if (!quantized_output_dtype(c.dtype(z)))
    return c.fail(std::string("the quantized output cannot be ") + dtype_name(c.dtype(z)));
  for (size_t i : {s, z})
    if (shape_numel(c.shape(i)) != 1)
      return c.fail("the quantized output's " + std::string(i == s ? "scale" : "zero point") + " has " +
                    std::to_string(shape_numel(c.shape(i))) + " values, not 1");
  c.set_output(slot, c.dtype(z), shape);
  return Status::ok();
}

}  // namespace rules
}  // namespace kiln
