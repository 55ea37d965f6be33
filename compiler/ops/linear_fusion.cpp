#include "compiler/ops/linear_fusion.h"

#include <memory>

namespace kiln::linear {

bool is_linear_node(const ir::Node& n) {
  if (n.dead || !n.domain.empty() || n.outputs.empty() || !n.outputs[0]) return false;
  if (n.op_type != "Conv" && n.op_type != "ConvTranspose" && n.op_type != "Gemm" && n.op_type != "MatMul")
    return false;
  return n.runtime_op == n.op_type && n.outputs[0]->dtype == DType::kFloat32 && !n.outputs[0]->constant;
}

ir::Node* sole_consumer(const ir::Graph& g, const ConsumerMap& consumers, const ir::Value* v) {
  if (!v || g.is_graph_output(v)) return nullptr;
  auto it = consumers.find(v);
  if (it == consumers.end() || it->second.size() != 1) return nullptr;
  ir::Node* c = it->second[0];
  if (c->dead) return nullptr;
  int uses = 0;
  for (const ir::Value* in : c->inputs) uses += in == v;
  return uses == 1 ? c : nullptr;
}

void absorb(ir::Node* producer, ir::Node* absorbed, ConsumerMap* consumers) {
  if (producer->fused.empty()) producer->fused.push_back(producer->name);
  if (absorbed->fused.empty())
    producer->fused.push_back(absorbed->name);
  else
    producer->fused.insert(producer->fused.end(), absorbed->fused.begin(), absorbed->fused.end());
  ir::Value* old_out = producer->outputs[0];
  ir::Value* out = absorbed->outputs[0];
  producer->outputs[0] = out;
  out->producer = producer;
  old_out->producer = nullptr;
  absorbed->dead = true;
  // The absorbed node no longer reads anything; later lookups must not see it.
  for (const ir::Value* v : absorbed->inputs) {
    auto it = consumers->find(v);
    if (it == consumers->end()) continue;
    auto& list = it->second;
    for (size_t i = 0; i < list.size(); ++i)
      if (list[i] == absorbed) {
        list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
  }
  // Dead-code elimination recomputes liveness from outputs: leave the husk none.
  absorbed->inputs.clear();
  absorbed->outputs.clear();
}

ir::Value* new_constant(ir::Graph& g, const std::string& hint, HostTensor t) {
  ir::Value* v = g.add_unique_value(hint);
  v->dtype = t.dtype();
  v->shape = t.shape();
  v->has_shape = true;
  v->constant = std::make_shared<HostTensor>(std::move(t));
  return v;
}

}  // namespace kiln::linear
