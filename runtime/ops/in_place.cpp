#include "runtime/ops/in_place.h"

#include "runtime/ops/elementwise_program.h"

namespace kiln {

bool may_write_in_place(const Plan& plan, const PlanNode& node, size_t input) {
  if (node.outputs.size() != 1 || input >= node.inputs.size() || node.inputs[input] < 0) return false;
  const PlanTensor& in = plan.tensors[node.inputs[input]];
  const PlanTensor& out = plan.tensors[node.outputs[0]];
  if (in.bytes() != out.bytes() || in.bytes() == 0) return false;
  if (node.op == "Reshape") return input == 0;
  // Same shape and element size: the input is read element for element (no broadcast).
  if (node.op == ew::kRuntimeOp) return in.shape == out.shape && dtype_size(in.dtype) == dtype_size(out.dtype);
  return false;
}

}  // namespace kiln
