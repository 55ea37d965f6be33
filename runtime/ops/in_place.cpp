#include "runtime/ops/in_place.h"

#include "runtime/ops/elementwise_program.h"

namespace kiln {
namespace {

// Whether tensors a and b have the same shape at every point of a dynamic plan's range: the
// same stored (max) shape and the same expression for every dim.
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
    if (ea->terms.size() != eb->terms.size()) return false;
    for (size_t i = 0; i < ea->terms.size(); ++i)
      if (ea->terms[i].vars != eb->terms[i].vars || ea->terms[i].coef != eb->terms[i].coef) return false;
  }
  return true;
}

}  // namespace

bool may_write_in_place(const Plan& plan, const PlanNode& node, size_t input) {
  if (node.outputs.size() != 1 || input >= node.inputs.size() || node.inputs[input] < 0) return false;
  const PlanTensor& in = plan.tensors[node.inputs[input]];
  const PlanTensor& out = plan.tensors[node.outputs[0]];
  if (in.bytes() != out.bytes() || in.bytes() == 0) return false;
  if (node.op == "Reshape") return input == 0;
  // Same shape and element size: the input is read element for element (no broadcast).
  // In a dynamic plan, at every shape in the range (an input equal to the output at the max
  // shapes may broadcast at a smaller one).
  if (node.op == ew::kRuntimeOp)
    return dtype_size(in.dtype) == dtype_size(out.dtype) && same_shape_everywhere(plan, node.inputs[input], node.outputs[0]);
  return false;
}

}  // namespace kiln
