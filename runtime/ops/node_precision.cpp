#include "runtime/ops/node_precision.h"

#include "runtime/ops/kernel_api.h"

namespace kiln {

std::string precision_name(DType t) {
  return t == DType::kFloat32 ? "fp32" : t == DType::kFloat16 ? "fp16" : dtype_name(t);
}

std::string input_precision(const Plan& plan, const PlanNode& node, size_t i) {
  if (i >= node.inputs.size() || node.inputs[i] < 0) return "?";
  return precision_name(plan.tensors[node.inputs[i]].dtype);
}

std::string conversion_precision(const Plan& plan, const PlanNode& node) {
  const std::string out = node.outputs.empty() ? "?" : precision_name(plan.tensors[node.outputs[0]].dtype);
  return input_precision(plan, node, 0) + "->" + out;
}

std::string node_precision(const Plan& plan, const PlanNode& node) {
  const CpuOp* op = cpu_registry().info(node.op);
  if (op && op->precision_fn) return op->precision_fn(plan, node);
  return node.outputs.empty() ? "?" : precision_name(plan.tensors[node.outputs[0]].dtype);
}

}  // namespace kiln
