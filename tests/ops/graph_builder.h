// Multi-node test graphs for the real compiler: named values, constants, nodes, outputs, built
// into a plan like `kiln build` would (fusion included).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/core/tensor.h"

namespace kiln::test {

// The value `name` of `g`, added on first use: a graph input when `inputs` holds it, a constant
// when `weights` does, else a plain value for a node to produce. For tests that write their IR
// graph with fixed value names.
inline ir::Value* named_value(ir::Graph* g, const std::map<std::string, HostTensor>& inputs,
                              const std::map<std::string, HostTensor>& weights, const std::string& name) {
  if (ir::Value* v = g->find_value(name)) return v;
  ir::Value* v = g->add_value(name);
  auto in = inputs.find(name);
  auto w = weights.find(name);
  const HostTensor* t = in != inputs.end() ? &in->second : w != weights.end() ? &w->second : nullptr;
  if (t) {
    v->dtype = t->dtype();
    v->shape = t->shape();
    v->has_shape = true;
    if (in != inputs.end()) {
      v->is_graph_input = true;
      g->inputs.push_back(v);
    } else {
      v->constant = std::make_shared<HostTensor>(*t);
    }
  }
  return v;
}

class GraphBuilder {
 public:
  explicit GraphBuilder(int opset = 13) { g_.name = "graph_test"; g_.opsets[""] = opset; }
  // A graph input holding `t` (runs bind it, in the order the inputs were added).
  std::string input(const HostTensor& t) { return value(t, false); }
  std::string constant(const HostTensor& t) { return value(t, true); }
  // A node of `op`; returns its first output's name (the others are name + ":1", ...).
  std::string node(const std::string& op, const std::vector<std::string>& ins, Attributes a = {}, int outputs = 1) {
    const std::string name = op + "_" + std::to_string(g_.nodes().size());
    ir::Node* n = g_.add_node(op, name);
    for (const std::string& i : ins) n->inputs.push_back(i.empty() ? nullptr : g_.find_value(i));
    for (int o = 0; o < outputs; ++o) {
      ir::Value* v = g_.add_value(o ? name + ":" + std::to_string(o) : name);
      v->producer = n;
      n->outputs.push_back(v);
    }
    n->attrs = std::move(a);
    return name;
  }
  void output(const std::string& name) { g_.outputs.push_back(g_.find_value(name)); }
  const std::vector<HostTensor>& inputs() const { return inputs_; }
  Status build(std::shared_ptr<Plan>* plan, BuildOptions opts = {}) {
    if (opts.device == "auto") opts.device = "cpu";
    *plan = std::make_shared<Plan>();
    return build_plan_from_graph(g_, opts, plan->get());
  }

 private:
  std::string value(const HostTensor& t, bool constant) {
    const std::string name = (constant ? "c" : "x") + std::to_string(count_++);
    ir::Value* v = g_.add_value(name);
    v->dtype = t.dtype();
    v->shape = t.shape();
    v->has_shape = true;
    if (constant) {
      v->constant = std::make_shared<HostTensor>(t);
    } else {
      v->is_graph_input = true;
      g_.inputs.push_back(v);
      inputs_.push_back(t);
    }
    return name;
  }
  ir::Graph g_;
  std::vector<HostTensor> inputs_;
  int count_ = 0;
};

}  // namespace kiln::test
