// A node that also writes its output 0 quantized per tensor, exactly as a QuantizeLinear reading
// that output would: compiler/passes/fuse_quantize_output.cpp folds such a QuantizeLinear into
// the ops whose registration says so (CpuOp::quantized_output), saving its launch and its read
// of the output. The node's form:
//   attribute `quantized_output` = 1, and `saturate` as the QuantizeLinear's (float8 only);
//   its last two inputs are the QuantizeLinear's y_scale (float32, one value) and y_zero_point
//   (one value of the quantized type: int8, uint8, float8e4m3fn or float8e5m2), both present;
//   its last output is the quantized tensor, with output 0's shape.
// Shared by the op rules and the kernels of both backends.
#pragma once
#include <cstddef>

#include "runtime/ops/op_rules.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct QuantizedOutput {
  size_t scale_input = 0, zero_point_input = 0, output = 0;
  bool saturate = true;
};

// Where `node` keeps its quantized copy; false when it writes none.
bool quantized_output(const PlanNode& node, QuantizedOutput* q);

// The dtypes a quantized copy may have.
bool quantized_output_dtype(DType t);

// `node` without its quantized copy (its own inputs and outputs), for checks written for that
// form; the node itself where it writes none.
PlanNode own_operands(const PlanNode& node);

namespace rules {
// For an op whose own inputs are `required` to `own` (the rest optional): reads the attributes
// above (`*on`: whether the node writes a copy) and checks the input count, `own` plus the two
// of the copy where it writes one.
Status quantized_output_inputs(RuleContext& c, size_t required, size_t own, bool* on);
// Checks the copy's scale and zero point (the last two of `inputs`) and sets output `slot` to
// the zero point's dtype at `shape`.
Status quantized_output_rule(RuleContext& c, size_t inputs, size_t slot, const Shape& shape);
}  // namespace rules

}  // namespace kiln
