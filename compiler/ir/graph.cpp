#include "compiler/ir/graph.h"

#include <algorithm>

namespace kiln::ir {

std::string Node::describe() const {
  return "node '" + name + "' (" + op_type + (version ? "-" + std::to_string(version) : "") + ")";
}

const Graph* Node::subgraph(const std::string& attr) const {
  for (const auto& [name, g] : subgraphs)
    if (name == attr) return g.get();
  return nullptr;
}

Value* Graph::add_value(const std::string& name) {
  auto v = std::make_unique<Value>();
  v->name = name;
  Value* raw = v.get();
  values_.push_back(std::move(v));
  if (!name.empty()) by_name_[name] = raw;
  return raw;
}

Value* Graph::find_value(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Value* Graph::add_unique_value(const std::string& hint) {
  std::string n;
  do {
    n = hint + "__" + std::to_string(unique_counter_++);
  } while (by_name_.count(n));
  return add_value(n);
}

Value* Graph::add_constant(const std::string& hint, std::shared_ptr<const HostTensor> t) {
  Value* v = add_unique_value(hint);
  v->dtype = t->dtype();
  v->shape = t->shape();
  v->has_shape = true;
  v->constant = std::move(t);
  return v;
}

Node* Graph::add_node(const std::string& op_type, const std::string& name) {
  auto n = std::make_unique<Node>();
  n->op_type = op_type;
  n->name = name;
  n->runtime_op = op_type;
  nodes_.push_back(std::move(n));
  return nodes_.back().get();
}

Node* Graph::insert_node_before(Node* before, const std::string& op_type, const std::string& name) {
  auto n = std::make_unique<Node>();
  n->op_type = op_type;
  n->name = name;
  n->runtime_op = op_type;
  Node* raw = n.get();
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& p) { return p.get() == before; });
  nodes_.insert(it, std::move(n));
  return raw;
}

void Graph::erase_dead() {
  // A dead node's outputs can outlive it (constant folding keeps the folded value and kills its
  // producer): they must not point at the freed node, or a later pass reads freed memory.
  for (const auto& n : nodes_)
    if (n->dead)
      for (Value* v : n->outputs)
        if (v && v->producer == n.get()) v->producer = nullptr;
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(), [](const auto& n) { return n->dead; }),
               nodes_.end());
}

std::unordered_map<const Value*, std::vector<Node*>> Graph::consumers() const {
  std::unordered_map<const Value*, std::vector<Node*>> m;
  for (const auto& n : nodes_) {
    if (n->dead) continue;
    for (Value* v : n->inputs)
      if (v) m[v].push_back(n.get());
  }
  return m;
}

bool Graph::is_graph_output(const Value* v) const {
  return std::find(outputs.begin(), outputs.end(), v) != outputs.end();
}

void Graph::replace_uses(Value* from, Value* to) {
  for (auto& n : nodes_)
    for (Value*& v : n->inputs)
      if (v == from) v = to;
}

}  // namespace kiln::ir
