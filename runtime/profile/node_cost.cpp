#include "runtime/profile/node_cost.h"

#include "runtime/ops/kernel_api.h"

namespace kiln {

namespace {
const PlanTensor* operand(const Plan& plan, const std::vector<int32_t>& list, size_t i) {
  return i < list.size() && list[i] >= 0 ? &plan.tensors[list[i]] : nullptr;
}
}  // namespace

double output_elements(const Plan& plan, const PlanNode& node) {
  const PlanTensor* out = operand(plan, node.outputs, 0);
  return out ? static_cast<double>(shape_numel(out->shape)) : 0.0;
}

double input_elements(const Plan& plan, const PlanNode& node, size_t i) {
  const PlanTensor* in = operand(plan, node.inputs, i);
  return in ? static_cast<double>(shape_numel(in->shape)) : 0.0;
}

double conv_flops(const Plan& plan, const PlanNode& node, size_t weight_input, bool transposed) {
  const PlanTensor* w = operand(plan, node.inputs, weight_input);
  if (!w) return output_elements(plan, node);
  double kernel = 1;
  for (size_t i = 1; i < w->shape.size(); ++i) kernel *= static_cast<double>(w->shape[i]);
  return 2.0 * (transposed ? input_elements(plan, node, 0) : output_elements(plan, node)) * kernel;
}

double matmul_flops(const Plan& plan, const PlanNode& node, bool trans_a) {
  const PlanTensor* a = operand(plan, node.inputs, 0);
  if (!a) return output_elements(plan, node);
  int64_t k = a->shape.empty() ? 1 : a->shape.back();
  if (trans_a && a->shape.size() == 2) k = a->shape[0];
  return 2.0 * output_elements(plan, node) * static_cast<double>(k);
}

NodeCost node_cost(const Plan& plan, const PlanNode& node) {
  NodeCost c;
  for (size_t i = 0; i < node.inputs.size(); ++i)
    if (const PlanTensor* t = operand(plan, node.inputs, i)) c.bytes += t->bytes();
  for (size_t i = 0; i < node.outputs.size(); ++i)
    if (const PlanTensor* t = operand(plan, node.outputs, i)) c.bytes += t->bytes();
  const CpuOp* op = cpu_registry().info(node.op);
  c.flops = op && op->cost_fn ? op->cost_fn(plan, node) : output_elements(plan, node);
  return c;
}

}  // namespace kiln
