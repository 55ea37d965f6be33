#include <unordered_set>

#include "compiler/passes/passes.h"

namespace kiln {

void remove_dead_nodes(ir::Graph& g) {
  // Walk backwards from the graph outputs; a node is live when one of its non-constant outputs
  // is read by a live node or is a graph output.
  std::unordered_set<const ir::Value*> needed(g.outputs.begin(), g.outputs.end());
  const auto& nodes = g.nodes();
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    ir::Node& n = **it;
    bool live = false;
    for (ir::Value* v : n.outputs) live |= v && !v->constant && needed.count(v);
    n.dead = !live;
    if (live)
      for (ir::Value* v : n.inputs)
        if (v) needed.insert(v);
  }
  g.erase_dead();
}

Status run_dead_code(ir::Graph& g, const PassContext&) {
  remove_dead_nodes(g);
  return Status::ok();
}

}  // namespace kiln
