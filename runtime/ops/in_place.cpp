#include "runtime/ops/in_place.h"

#include "runtime/ops/kernel_api.h"

namespace kiln {

bool same_shape_everywhere(const Plan& plan, int32_t a, int32_t b) {
  if (plan.tensors[a].shape != plan.tensors[b].shape) return false;
  for (uint32_t d = 0; d < plan.tensors[a].shape.size(); ++d) {
    const DynExpr *ea = nullptr, *eb = nullptr;
    for (const DynExpr& e : plan.dyn_exprs)
      if (e.target == DynTarget::kTensorDim && e.pos == d) {
        if (e.index == a) ea = &e;
        if (e.index == b) eb = &e;
      }
    if (!ea != !eb) return false;
    if (!ea) continue;
    if (!(ea->terms == eb->terms) || !(ea->divs == eb->divs)) return false;
  }
  return true;
}

bool may_write_in_place(const Plan& plan, const PlanNode& node, size_t input) {
  if (node.outputs.size() != 1 || input >= node.inputs.size() || node.inputs[input] < 0) return false;
  const PlanTensor& in = plan.tensors[node.inputs[input]];
  const PlanTensor& out = plan.tensors[node.outputs[0]];
  if (in.bytes() != out.bytes() || in.bytes() == 0) return false;
  const CpuOp* op = cpu_registry().info(node.op);
  return op && op->in_place_fn && op->in_place_fn(plan, node, input);
}

}  // namespace kiln
