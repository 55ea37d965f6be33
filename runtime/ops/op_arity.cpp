#include "runtime/ops/op_arity.h"

#include <string>

#include "runtime/ops/kernel_api.h"

namespace kiln {

Status check_node_operands(const PlanNode& node) {
  const CpuOp* op = cpu_registry().info(node.op);
  // Ops the runtime lacks are refused by the partitioner; ops registered without an arity are
  // checked by their kernels.
  if (!op) return Status::ok();
  const std::string where = "node '" + node.name + "' (" + node.op + ")";
  if (static_cast<int>(node.inputs.size()) < op->min_inputs)
    return invalid_plan(where + " has " + std::to_string(node.inputs.size()) + " inputs; the op needs " +
                        std::to_string(op->min_inputs));
  for (int i = op->optional_leading_inputs; i < op->min_inputs; ++i)
    if (node.inputs[i] < 0) return invalid_plan(where + " lacks its required input " + std::to_string(i));
  if (static_cast<int>(node.outputs.size()) < op->min_outputs)
    return invalid_plan(where + " has " + std::to_string(node.outputs.size()) + " outputs; the op needs " +
                        std::to_string(op->min_outputs));
  return Status::ok();
}

}  // namespace kiln
