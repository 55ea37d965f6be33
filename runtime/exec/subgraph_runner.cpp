#include "runtime/exec/subgraph_runner.h"

#include "runtime/core/alloc_stats.h"
#include "runtime/exec/memory_plan.h"
#include "runtime/ops/op_arity.h"

namespace kiln {
namespace {

Status check_bound(const PlanTensor& t, const TensorView& v, const std::string& what) {
  if (v.dtype != t.dtype || v.shape != t.shape || (!v.data && v.bytes()))
    return invalid_argument(what + " '" + t.name + "' expects " + dtype_name(t.dtype) + " " + shape_str(t.shape) +
                            ", got " + dtype_name(v.dtype) + " " + shape_str(v.shape));
  return Status::ok();
}

}  // namespace

Status SubgraphExecutor::create(const Plan& plan, std::unique_ptr<SubgraphExecutor>* out) {
  std::unique_ptr<SubgraphExecutor> ex(new SubgraphExecutor(plan));
  ex->states_.resize(plan.graphs.size());
  constexpr uint64_t kAlign = 64;
  for (size_t gi = 0; gi < plan.graphs.size(); ++gi) {
    const PlanGraph& g = plan.graphs[gi];
    for (const PlanNode& n : g.nodes) {
      KILN_TRY(check_node_operands(n));
      if (!cpu_registry().find(n.op))
        return unsupported("node '" + n.name + "' (in a subgraph): this runtime has no CPU kernel for op '" + n.op + "'");
    }
    // The memory planner sees the subgraph as a plan whose inputs are its formal inputs and
    // captures (bound by the caller, so not in the arena).
    Plan view;
    view.tensors = g.tensors;
    view.nodes = g.nodes;
    view.inputs = g.inputs;
    view.inputs.insert(view.inputs.end(), g.captures.begin(), g.captures.end());
    view.outputs = g.outputs;
    const ArenaPlan arena = plan_arena(view, std::vector<Backend>(g.nodes.size(), Backend::kCpu), Backend::kCpu, kAlign);
    State& s = ex->states_[gi];
    if (arena.size) {
      s.arena.reset(static_cast<uint8_t*>(std::aligned_alloc(kAlign, (arena.size + kAlign - 1) / kAlign * kAlign)));
      count_runtime_allocation();
      if (!s.arena) return out_of_memory("cannot allocate " + std::to_string(arena.size) + " bytes for subgraph activations");
    }
    ex->arena_bytes_ += arena.size;
    s.views.resize(g.tensors.size());
    for (size_t t = 0; t < g.tensors.size(); ++t) {
      const PlanTensor& pt = g.tensors[t];
      s.views[t] = TensorView{pt.dtype, pt.shape, nullptr};
      if (pt.kind == TensorKind::kConstant) s.views[t].data = const_cast<uint8_t*>(plan.weight_data(pt));
      else if (pt.kind == TensorKind::kActivation && arena.offset[t] >= 0) s.views[t].data = s.arena.get() + arena.offset[t];
    }
  }
  *out = std::move(ex);
  return Status::ok();
}

const PlanGraph* SubgraphExecutor::graph(int32_t index) const {
  return index >= 0 && static_cast<size_t>(index) < plan_.graphs.size() ? &plan_.graphs[index] : nullptr;
}

Status SubgraphExecutor::run(int32_t index, const std::vector<TensorView>& operands,
                             const std::vector<TensorView>& inputs, std::vector<TensorView>* outputs) {
  const PlanGraph* g = graph(index);
  if (!g) return invalid_plan("subgraph index " + std::to_string(index) + " is out of range");
  State& s = states_[index];
  if (inputs.size() != g->inputs.size())
    return invalid_plan("subgraph " + std::to_string(index) + " takes " + std::to_string(g->inputs.size()) +
                        " inputs, its node gives " + std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int32_t t = g->inputs[i];
    KILN_TRY(check_bound(g->tensors[t], inputs[i], "subgraph input"));
    s.views[t].data = inputs[i].data;
  }
  for (size_t i = 0; i < g->captures.size(); ++i) {
    const int32_t t = g->captures[i], op = g->capture_operands[i];
    if (op < 0 || static_cast<size_t>(op) >= operands.size())
      return invalid_plan("subgraph capture '" + g->tensors[t].name + "' names a missing operand");
    KILN_TRY(check_bound(g->tensors[t], operands[op], "subgraph capture"));
    s.views[t].data = operands[op].data;
  }
  for (const PlanNode& n : g->nodes) {
    s.in.clear();
    s.out.clear();
    for (int32_t t : n.inputs) s.in.push_back(t >= 0 ? s.views[t] : TensorView{});
    for (int32_t t : n.outputs) s.out.push_back(s.views[t]);
    KILN_TRY(run_cpu_kernel(n, s.in, s.out, this));
  }
  outputs->clear();
  for (int32_t t : g->outputs) outputs->push_back(s.views[t]);
  return Status::ok();
}

}  // namespace kiln
