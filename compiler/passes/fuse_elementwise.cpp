// Fuses chains of elementwise ops into one Elementwise kernel: a node whose output feeds
// exactly one Elementwise node (and is not a graph output) is inlined into that consumer's
// program, so the chain reads its inputs once and writes one output instead of a tensor per op.
// Only producers with the consumer's output shape are inlined: a producer that the consumer
// broadcasts would be recomputed for every broadcast copy. A copy to the same shape between the
// two (an Expand to the shape it already has) does not stop it.
#include <algorithm>
#include <set>
#include <unordered_map>

#include "compiler/passes/passes.h"
#include "runtime/ops/elementwise_program.h"

namespace kiln {
namespace {

// Bounds that keep generated OpenCL kernels small (arguments, registers).
constexpr size_t kMaxInputs = 16;
constexpr size_t kMaxInstructions = 64;

bool is_elementwise(const ir::Node* n) { return n && !n->dead && n->runtime_op == ew::kRuntimeOp; }

// A byte copy (the copy family's runtime op) whose output has its input's shape and dtype.
bool same_shape_copy(const ir::Node* n) {
  return n && !n->dead && n->runtime_op == "Reshape" && n->inputs.size() == 1 && n->inputs[0] &&
         n->outputs.size() == 1 && n->outputs[0] && n->inputs[0]->shape == n->outputs[0]->shape &&
         n->inputs[0]->dtype == n->outputs[0]->dtype;
}

Status load_program(const ir::Node& n, ew::Program* p) {
  std::vector<DType> dt;
  for (const ir::Value* v : n.inputs) dt.push_back(v->dtype);
  return ew::Program::from_attrs(n.attrs, dt, p).with_context(n.describe());
}

// The program of `consumer` with input `slot` replaced by the whole program of `producer`.
// Inputs of both are merged (a value read by both becomes one input).
void inline_program(const ew::Program& prod, const std::vector<ir::Value*>& prod_in, const ew::Program& cons,
                    const std::vector<ir::Value*>& cons_in, ir::Value* link, ew::Program* out,
                    std::vector<ir::Value*>* out_in) {
  std::vector<ir::Value*> inputs;
  auto input_reg = [&](ir::Value* v) {
    auto it = std::find(inputs.begin(), inputs.end(), v);
    if (it != inputs.end()) return static_cast<int>(it - inputs.begin());
    inputs.push_back(v);
    return static_cast<int>(inputs.size() - 1);
  };
  // Register numbers are only final once all inputs are known: first collect the inputs.
  std::vector<int> prod_map(prod_in.size()), cons_map(cons_in.size(), -1);
  for (size_t i = 0; i < prod_in.size(); ++i) prod_map[i] = input_reg(prod_in[i]);
  for (size_t i = 0; i < cons_in.size(); ++i)
    if (cons_in[i] != link) cons_map[i] = input_reg(cons_in[i]);
  const int nin = static_cast<int>(inputs.size());

  ew::Program p;
  for (ir::Value* v : inputs) p.inputs.push_back(v->dtype);
  auto remap = [](int r, const std::vector<int>& in_map, int n_old_in, int code_base) {
    if (r < 0) return r;
    return r < n_old_in ? in_map[r] : code_base + (r - n_old_in);
  };
  const int prod_base = nin;
  for (const ew::Instr& in : prod.code) {
    ew::Instr c = in;
    const int n_old = static_cast<int>(prod_in.size());
    c.a = remap(in.a, prod_map, n_old, prod_base);
    c.b = remap(in.b, prod_map, n_old, prod_base);
    c.c = remap(in.c, prod_map, n_old, prod_base);
    p.code.push_back(c);
  }
  const int prod_out = p.num_regs() - 1;
  for (size_t i = 0; i < cons_in.size(); ++i)
    if (cons_in[i] == link) cons_map[i] = prod_out;
  const int cons_base = p.num_regs();
  for (const ew::Instr& in : cons.code) {
    ew::Instr c = in;
    const int n_old = static_cast<int>(cons_in.size());
    c.a = remap(in.a, cons_map, n_old, cons_base);
    c.b = remap(in.b, cons_map, n_old, cons_base);
    c.c = remap(in.c, cons_map, n_old, cons_base);
    p.code.push_back(c);
  }
  *out = std::move(p);
  *out_in = std::move(inputs);
}

}  // namespace

Status run_fuse_elementwise(ir::Graph& g, const PassContext&) {
  // Distinct consumer nodes of each value, kept current as nodes merge.
  std::unordered_map<const ir::Value*, std::set<ir::Node*>> users;
  for (const auto& n : g.nodes())
    if (!n->dead)
      for (ir::Value* v : n->inputs)
        if (v) users[v].insert(n.get());

  // fused lists name the original nodes in graph order, whatever order the merges happen in.
  std::unordered_map<std::string, size_t> order;
  for (const auto& n : g.nodes()) order.emplace(n->name, order.size());
  auto by_order = [&](const std::string& a, const std::string& b) { return order[a] < order[b]; };

  for (const auto& np : g.nodes()) {
    ir::Node* n = np.get();
    if (!is_elementwise(n)) continue;
    for (bool changed = true; changed;) {
      changed = false;
      for (ir::Value* v : n->inputs) {
        ir::Node* prod = v ? v->producer : nullptr;
        // A copy to the same shape between them (an Expand to the shape it has) is looked through.
        ir::Node* copy = nullptr;
        ir::Value* w = v;  // what the producer writes
        if (same_shape_copy(prod) && !g.is_graph_output(v) && users[v].size() == 1) {
          copy = prod;
          w = copy->inputs[0];
          prod = w->producer;
        }
        if (!is_elementwise(prod) || prod == n || prod->outputs.size() != 1 || g.is_graph_output(w) ||
            users[w].size() != 1 || w->shape != n->outputs[0]->shape || w->constant || v->constant)
          continue;
        ew::Program pp, cp, fused;
        KILN_TRY(load_program(*prod, &pp));
        KILN_TRY(load_program(*n, &cp));
        std::vector<ir::Value*> fused_in;
        inline_program(pp, prod->inputs, cp, n->inputs, v, &fused, &fused_in);
        if (fused_in.size() > kMaxInputs || fused.code.size() > kMaxInstructions) continue;
        KILN_TRY_CTX(fused.validate(), "fusing " + prod->describe() + " into " + n->describe());

        std::vector<std::string> names = prod->fused.empty() ? std::vector<std::string>{prod->name} : prod->fused;
        const std::vector<std::string> own = n->fused.empty() ? std::vector<std::string>{n->name} : n->fused;
        names.insert(names.end(), own.begin(), own.end());
        if (copy) {
          const std::vector<std::string> moved = copy->fused.empty() ? std::vector<std::string>{copy->name} : copy->fused;
          names.insert(names.end(), moved.begin(), moved.end());
        }
        std::stable_sort(names.begin(), names.end(), by_order);
        for (ir::Value* in : prod->inputs) {
          users[in].erase(prod);
          users[in].insert(n);
        }
        for (ir::Value* in : n->inputs) users[in].erase(n);
        for (ir::Value* in : fused_in) users[in].insert(n);
        users.erase(v);
        if (copy) {
          users.erase(w);
          copy->dead = true;
          copy->inputs.clear();
        }
        // The node now computes the whole chain: the ONNX attributes of its last op no longer
        // describe it, only the program does.
        n->attrs = Attributes();
        fused.to_attrs(&n->attrs);
        n->inputs = fused_in;
        n->fused = names;
        prod->dead = true;
        prod->inputs.clear();
        changed = true;
        break;  // n->inputs changed: rescan
      }
    }
  }
  return Status::ok();
}

}  // namespace kiln
