#include "compiler/quant/graph_copy.h"

#include <unordered_map>

namespace kiln {

void copy_graph(const ir::Graph& src, ir::Graph* dst) {
  dst->name = src.name;
  dst->opsets = src.opsets;
  std::unordered_map<const ir::Value*, ir::Value*> vmap;
  vmap[nullptr] = nullptr;
  for (const auto& v : src.values()) {
    ir::Value* c = dst->add_value(v->name);
    const std::string name = c->name;
    *c = *v;
    c->name = name;
    c->producer = nullptr;
    vmap[v.get()] = c;
  }
  for (const auto& n : src.nodes()) {
    ir::Node* c = dst->add_node(n->op_type, n->name);
    *c = *n;
    for (auto& in : c->inputs) in = vmap.at(in);
    for (auto& out : c->outputs) {
      out = vmap.at(out);
      if (out) out->producer = c;
    }
  }
  for (const ir::Value* v : src.inputs) dst->inputs.push_back(vmap.at(v));
  for (const ir::Value* v : src.outputs) dst->outputs.push_back(vmap.at(v));
}

}  // namespace kiln
