// Collapses the elementwise subgraph that exporters write for GELU into one Gelu node (ONNX
// Gelu, opset 20), so that the linear ops' output stages fuse it as an activation, as they fuse
// Relu: a BERT FFN's MatMul + bias + GELU becomes one kernel (and in INT8/FP8 plans the
// QuantizeLinear after it too, fuse_quantized), instead of a round trip of the widest tensor
// of the layer through memory and an elementwise pass over it.
// Exporters spell GELU many ways (x * 0.5 * (1 + erf(x / sqrt 2)) with Div or Mul, in any
// operand order; the tanh approximation with Pow or Muls), so a candidate region is recognized
// by evaluating it with kiln's own CPU kernels at sample points and comparing with both forms,
// as the cpu fast path recognizes its GELU programs: nothing that differs from GELU by more than
// float rounding passes.
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "compiler/ops/linear_fusion.h"
#include "compiler/passes/passes.h"
#include "runtime/ops/elementwise_program.h"
#include "runtime/ops/gelu_reference.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

constexpr size_t kMaxRegion = 12;  // the tanh form is 8-9 nodes
constexpr int kBackwardDepth = 6;  // from Erf/Tanh back to x: the tanh form's Pow is 4 deep

using Positions = std::unordered_map<const ir::Node*, size_t>;

// Any dtype: Pow's exponent may be an integer.
bool is_scalar_constant(const ir::Value* v) { return v && v->constant && v->constant->numel() == 1; }

bool is_region_op(const ir::Node& n) {
  static const std::set<std::string> kOps = {"Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh"};
  return !n.dead && n.domain.empty() && n.runtime_op == ew::kRuntimeOp && n.outputs.size() == 1 && n.outputs[0] &&
         n.outputs[0]->dtype == DType::kFloat32 && !n.outputs[0]->constant && kOps.count(n.op_type);
}

// The region ops computable from x alone (each input is x, a scalar constant or the output of
// another of them), at most kMaxRegion, in graph order.
std::vector<ir::Node*> forward_region(const linear::ConsumerMap& consumers, const Positions& pos, ir::Value* x) {
  std::vector<ir::Node*> region;
  std::set<const ir::Value*> known = {x};
  std::vector<const ir::Value*> frontier = {x};
  while (!frontier.empty() && region.size() < kMaxRegion) {
    const ir::Value* v = frontier.back();
    frontier.pop_back();
    auto it = consumers.find(v);
    if (it == consumers.end()) continue;
    for (ir::Node* c : it->second) {
      if (region.size() >= kMaxRegion) break;
      if (!is_region_op(*c) || c->outputs[0]->shape != x->shape || known.count(c->outputs[0])) continue;
      // A node with an input not known yet is visited again once that input is.
      const bool ready = std::all_of(c->inputs.begin(), c->inputs.end(),
                                     [&](const ir::Value* in) { return known.count(in) || is_scalar_constant(in); });
      if (!ready) continue;
      region.push_back(c);
      known.insert(c->outputs[0]);
      frontier.push_back(c->outputs[0]);
    }
  }
  std::sort(region.begin(), region.end(), [&](const ir::Node* a, const ir::Node* b) { return pos.at(a) < pos.at(b); });
  return region;
}

// The nodes of `region` that `y_node` depends on (itself included), in graph order.
std::vector<ir::Node*> ancestors(const std::vector<ir::Node*>& region, ir::Node* y_node) {
  std::set<const ir::Node*> in_region(region.begin(), region.end()), keep = {y_node};
  for (auto it = region.rbegin(); it != region.rend(); ++it) {
    if (!keep.count(*it)) continue;
    for (const ir::Value* v : (*it)->inputs)
      if (v && v->producer && in_region.count(v->producer)) keep.insert(v->producer);
  }
  std::vector<ir::Node*> out;
  for (ir::Node* n : region)
    if (keep.count(n)) out.push_back(n);
  return out;
}

// Whether only `nodes` (and none of the graph's outputs) read what `nodes` compute, `y` aside.
bool self_contained(const ir::Graph& g, const linear::ConsumerMap& consumers, const std::vector<ir::Node*>& nodes,
                    const ir::Value* y) {
  const std::set<const ir::Node*> set(nodes.begin(), nodes.end());
  for (const ir::Node* n : nodes) {
    const ir::Value* v = n->outputs[0];
    if (v == y) continue;
    if (g.is_graph_output(v)) return false;
    auto it = consumers.find(v);
    if (it != consumers.end())
      for (const ir::Node* c : it->second)
        if (!set.count(c)) return false;
  }
  return true;
}

// Which GELU `nodes` compute from x into y (kNone: neither, or not evaluable).
GeluForm gelu_form(const std::vector<ir::Node*>& nodes, const ir::Value* x, const ir::Value* y) {
  std::map<const ir::Value*, std::shared_ptr<HostTensor>> vals;
  auto xs = std::make_shared<HostTensor>(DType::kFloat32, Shape{kGeluProbePoints});
  for (int i = 0; i < kGeluProbePoints; ++i) xs->as<float>()[i] = gelu_probe_point(i);
  vals[x] = xs;
  for (const ir::Node* n : nodes) {
    PlanNode pn;
    pn.name = n->name;
    pn.op = n->runtime_op;
    pn.attrs = n->attrs;
    std::vector<TensorView> in;
    for (const ir::Value* v : n->inputs) {
      auto it = vals.find(v);
      in.push_back(it != vals.end() ? it->second->view() : v->constant->view());
    }
    auto out = std::make_shared<HostTensor>(DType::kFloat32, Shape{kGeluProbePoints});
    if (!run_cpu_kernel(pn, in, {out->view()}).is_ok()) return GeluForm::kNone;
    vals[n->outputs[0]] = out;
  }
  return gelu_form_of(vals[y]->as<float>());
}

// The values `anchor` depends on through region ops, nearest first: where x may be.
std::vector<ir::Value*> x_candidates(const ir::Node* anchor) {
  std::vector<ir::Value*> out;
  std::vector<std::pair<const ir::Node*, int>> todo = {{anchor, 0}};
  for (size_t i = 0; i < todo.size(); ++i) {
    const auto [n, depth] = todo[i];
    for (ir::Value* v : n->inputs) {
      if (!v || v->constant || v->dtype != DType::kFloat32 || std::count(out.begin(), out.end(), v)) continue;
      out.push_back(v);
      if (depth + 1 < kBackwardDepth && v->producer && is_region_op(*v->producer))
        todo.push_back({v->producer, depth + 1});
    }
  }
  return out;
}

// Replaces the GELU computed around `anchor` (an Erf or Tanh node) by one Gelu node; `consumers`
// and `pos` describe the graph as it is.
Status collapse_at(ir::Graph& g, ir::Node* anchor, const linear::ConsumerMap& consumers, const Positions& pos,
                   bool* collapsed) {
  *collapsed = false;
  for (ir::Value* x : x_candidates(anchor)) {
    const std::vector<ir::Node*> region = forward_region(consumers, pos, x);
    if (!std::count(region.begin(), region.end(), anchor)) continue;
    for (ir::Node* y_node : region) {
      if (pos.at(y_node) <= pos.at(anchor)) continue;
      ir::Value* y = y_node->outputs[0];
      const std::vector<ir::Node*> nodes = ancestors(region, y_node);
      if (!std::count(nodes.begin(), nodes.end(), anchor) || !self_contained(g, consumers, nodes, y)) continue;
      const GeluForm form = gelu_form(nodes, x, y);
      if (form == GeluForm::kNone) continue;
      ir::Node* gelu = g.insert_node_before(y_node, "Gelu", y_node->name);
      gelu->attrs.set("approximate", std::string(form == GeluForm::kTanh ? "tanh" : "none"));
      gelu->inputs = {x};
      gelu->outputs = {y};
      for (ir::Node* n : nodes) {
        linear::append_fused(gelu, *n);
        n->dead = true;
        n->inputs.clear();
        n->outputs.clear();
      }
      y->producer = gelu;
      *collapsed = true;
      return infer_and_fold_node(*gelu, g, 20).with_context("fuse_gelu: " + gelu->describe());
    }
  }
  return Status::ok();
}

}  // namespace

Status run_fuse_gelu(ir::Graph& g, const PassContext&) {
  std::vector<ir::Node*> anchors;
  for (const auto& n : g.nodes())
    if (is_region_op(*n) && (n->op_type == "Erf" || n->op_type == "Tanh")) anchors.push_back(n.get());
  // The graph's reader lists and node order, recomputed only after a collapse changed them.
  linear::ConsumerMap consumers;
  Positions pos;
  bool changed = true;
  for (ir::Node* a : anchors) {
    if (a->dead) continue;  // inside a GELU collapsed already
    if (changed) {
      consumers = g.consumers();
      pos.clear();
      for (size_t i = 0; i < g.nodes().size(); ++i) pos[g.nodes()[i].get()] = i;
    }
    KILN_TRY(collapse_at(g, a, consumers, pos, &changed));
  }
  g.erase_dead();
  return Status::ok();
}

}  // namespace kiln
