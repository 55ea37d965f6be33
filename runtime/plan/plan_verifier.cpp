#include "runtime/plan/plan_verifier.h"

#include "runtime/ops/kernel_api.h"
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

// `tensors`: the plan's, or a subgraph's (its constants live in the same weights section).
RuleTensor rule_tensor(const Plan& p, const std::vector<PlanTensor>& tensors, int32_t t, const Shape& shape) {
  if (t < 0) return RuleTensor{};
  const PlanTensor& pt = tensors[t];
  RuleTensor r{pt.dtype, shape, nullptr};
  if (pt.kind == TensorKind::kConstant) r.data = p.weight_data(pt);
  return r;
}

Status verify_node(const Plan& p, const std::vector<PlanTensor>& tensors, const PlanNode& node,
                   const std::vector<Shape>* shapes, std::vector<std::string>* unread) {
  std::vector<RuleTensor> in, out;
  auto shape_of = [&](int32_t t) -> const Shape& { return shapes ? (*shapes)[t] : tensors[t].shape; };
  for (int32_t t : node.inputs) in.push_back(t >= 0 ? rule_tensor(p, tensors, t, shape_of(t)) : RuleTensor{});
  for (int32_t t : node.outputs) out.push_back(rule_tensor(p, tensors, t, shape_of(t)));
  return check_node_rule(node, in, out, unread);
}

}  // namespace

Status verify_plan_nodes(const Plan& plan) {
  for (const PlanNode& n : plan.nodes) KILN_TRY(verify_node(plan, plan.tensors, n, nullptr, nullptr));
  for (size_t g = 0; g < plan.graphs.size(); ++g)
    for (const PlanNode& n : plan.graphs[g].nodes)
      KILN_TRY(verify_node(plan, plan.graphs[g].tensors, n, nullptr, nullptr)
                   .with_context("subgraph " + std::to_string(g)));
  return Status::ok();
}

Status verify_nodes_at(const Plan& plan, const std::vector<PlanNode>& nodes, const std::vector<Shape>& shapes) {
  for (const PlanNode& n : nodes) KILN_TRY(verify_node(plan, plan.tensors, n, &shapes, nullptr));
  return Status::ok();
}

std::vector<std::string> unread_attributes(const Plan& plan, const PlanNode& node,
                                           const std::vector<PlanTensor>* tensors) {
  std::vector<std::string> unread;
  if (!verify_node(plan, tensors ? *tensors : plan.tensors, node, nullptr, &unread).is_ok()) unread.clear();
  return unread;
}

Status verify_backends(const Plan& plan, const std::vector<Backend>& backends, const DeviceCaps& device) {
  for (size_t i = 0; i < plan.nodes.size() && i < backends.size(); ++i) {
    if (backends[i] != Backend::kOpenCL) continue;
    const PlanNode& n = plan.nodes[i];
    const ClOp* op = opencl_registry().find(n.op);
    if (!op)
      return unsupported("node '" + n.name + "': this runtime has no OpenCL kernel for op '" + n.op + "'");
    if (op->supports && !op->supports(n, plan, device))
      return invalid_plan("node '" + n.name + "' (" + n.op +
                          ") is assigned to OpenCL, but the OpenCL kernel does not take its dtypes, sizes or "
                          "attributes on this device (rebuild the plan for this device)");
  }
  return Status::ok();
}

}  // namespace kiln
