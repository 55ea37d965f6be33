// Control flow: If, Loop, Scan. An If whose condition is known at build time is inlined: the
// chosen branch's nodes join the enclosing graph right after the If (the inference loop reaches
// them next), its outer-scope reads become the If's operands. Otherwise the node keeps its
// subgraphs, inferred here at the shapes the node gives them, and its CPU kernel runs them at
// run time (runtime/backends/cpu/control_flow.cpp). Plans are statically shaped, so a subgraph
// must give every output one shape whatever happens at run time.
#include <unordered_map>
#include <unordered_set>

#include "compiler/ops/op_schema.h"
#include "compiler/passes/passes.h"

namespace kiln {
namespace {

std::string value_desc(const ir::Value* v) { return dtype_name(v->dtype) + " " + shape_str(v->shape); }

Status get_subgraph(InferContext& c, const char* attr, ir::Graph** out) {
  for (auto& [name, g] : c.node().subgraphs)
    if (name == attr) {
      *out = g.get();
      return Status::ok();
    }
  return c.fail(std::string("graph attribute '") + attr + "' is missing");
}

// Puts the node's subgraphs in the op's order (ONNX stores attributes in any order), the order
// the runtime kernels index them by; any other graph attribute is an error.
Status order_subgraphs(InferContext& c, std::initializer_list<const char*> names) {
  auto& subs = c.node().subgraphs;
  std::vector<std::pair<std::string, std::shared_ptr<ir::Graph>>> ordered;
  for (const char* name : names) {
    ir::Graph* g;
    KILN_TRY(get_subgraph(c, name, &g));
    for (auto& sg : subs)
      if (sg.first == name) ordered.push_back(sg);
  }
  if (ordered.size() != subs.size()) return c.fail("has graph attributes other than the op's");
  subs = std::move(ordered);
  return Status::ok();
}

// Gives every output left out ("") a value of its own: the kernels find each output at its
// position (a Loop's scan output nobody reads is still computed).
void materialize_outputs(InferContext& c) {
  ir::Node& n = c.node();
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (!n.outputs[i]) {
      n.outputs[i] = c.graph().add_unique_value(n.name + "_unused_output");
      n.outputs[i]->producer = &n;
    }
}

Status require_explicit_inputs(InferContext& c, size_t min, size_t max) {
  const size_t n = c.node().explicit_inputs();
  if (n < min || n > max)
    return c.fail("expected " + (min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max)) +
                  " inputs, got " + std::to_string(n));
  return Status::ok();
}

// Gives a subgraph its formal inputs' dtypes and shapes and its captures the operands' (with
// their build-time contents, so branches fold what they can), then infers it.
Status infer_subgraph(InferContext& c, const char* attr, ir::Graph& sub,
                      const std::vector<std::pair<DType, Shape>>& formal) {
  const std::string where = "subgraph '" + std::string(attr) + "'";
  if (sub.inputs.size() != formal.size())
    return c.fail(where + " has " + std::to_string(sub.inputs.size()) + " inputs; the op gives it " +
                  std::to_string(formal.size()));
  for (size_t i = 0; i < formal.size(); ++i) {
    ir::Value* v = sub.inputs[i];
    if (v->dtype != DType::kUndefined && v->dtype != formal[i].first)
      return c.fail(where + " input '" + v->name + "' is declared " + dtype_name(v->dtype) + " but receives " +
                    dtype_name(formal[i].first));
    v->dtype = formal[i].first;
    v->shape = formal[i].second;
    v->has_shape = true;
  }
  for (const ir::Graph::Capture& cap : sub.captures) {
    const ir::Value* outer = c.input(cap.operand);
    cap.inner->dtype = outer->dtype;
    cap.inner->shape = outer->shape;
    cap.inner->has_shape = true;
    cap.inner->constant = outer->constant;
  }
  KILN_TRY_CTX(infer_graph(sub), c.node().describe() + " " + where);
  remove_dead_nodes(sub);
  for (const ir::Value* v : sub.outputs)
    if (!v->has_shape) return internal_error(c.node().describe() + " " + where + " output '" + v->name + "' has no shape");
  return Status::ok();
}

// Drops the implicit inputs no subgraph reads any more (folded into constants, or dead) and
// merges repeated ones, renumbering the captures.
void prune_captures(ir::Node& n) {
  const size_t first = n.explicit_inputs();
  std::vector<ir::Value*> kept;
  std::unordered_map<const ir::Value*, size_t> slot;
  for (auto& [attr, sub] : n.subgraphs) {
    std::unordered_set<const ir::Value*> read(sub->outputs.begin(), sub->outputs.end());
    for (const auto& m : sub->nodes())
      for (ir::Value* v : m->inputs) read.insert(v);
    std::vector<ir::Graph::Capture> caps;
    for (ir::Graph::Capture cap : sub->captures) {
      if (cap.inner->constant || !read.count(cap.inner)) continue;
      ir::Value* outer = n.inputs[cap.operand];
      auto it = slot.find(outer);
      if (it == slot.end()) {
        it = slot.emplace(outer, first + kept.size()).first;
        kept.push_back(outer);
      }
      cap.operand = it->second;
      caps.push_back(cap);
    }
    sub->captures = std::move(caps);
  }
  n.inputs.resize(first);
  n.inputs.insert(n.inputs.end(), kept.begin(), kept.end());
  n.implicit_inputs = kept.size();
}

// Replaces the If by its chosen branch: the branch's nodes are inserted after it (so the
// inference loop infers them next), reading the If's operands for the branch's captures; the
// If's outputs are written by the branch nodes that produce them, or by an Identity where the
// branch returns an outer value, a constant or one value twice.
Status inline_branch(InferContext& c, ir::Graph& br) {
  ir::Node& n = c.node();
  ir::Graph& g = c.graph();
  if (br.outputs.size() != n.outputs.size())
    return c.fail("the chosen branch has " + std::to_string(br.outputs.size()) + " outputs, the If " +
                  std::to_string(n.outputs.size()));
  ir::Node* next = nullptr;
  for (size_t i = 0; i + 1 < g.nodes().size(); ++i)
    if (g.nodes()[i].get() == &n) next = g.nodes()[i + 1].get();
  auto add = [&](const std::string& op, const std::string& name) {
    return next ? g.insert_node_before(next, op, name) : g.add_node(op, name);
  };
  std::unordered_map<const ir::Value*, ir::Value*> map;
  for (const ir::Graph::Capture& cap : br.captures) map[cap.inner] = n.inputs[cap.operand];
  auto outer_of = [&](ir::Value* v) -> ir::Value* {
    auto it = map.find(v);
    if (it != map.end()) return it->second;
    if (!v->constant) return nullptr;
    ir::Value* o = g.add_constant(v->name, v->constant);
    map[v] = o;
    return o;
  };
  std::unordered_map<const ir::Value*, ir::Value*> direct;  // branch value -> If output it becomes
  for (size_t i = 0; i < br.outputs.size(); ++i)
    if (n.outputs[i] && br.outputs[i]->producer && !direct.count(br.outputs[i])) direct[br.outputs[i]] = n.outputs[i];
  for (const auto& bn : br.nodes()) {
    ir::Node* m = add(bn->op_type, bn->name);
    m->domain = bn->domain;
    m->attrs = bn->attrs;
    m->subgraphs = bn->subgraphs;
    m->implicit_inputs = bn->implicit_inputs;
    m->fused = bn->fused;
    for (ir::Value* v : bn->inputs) {
      ir::Value* o = v ? outer_of(v) : nullptr;
      if (v && !o) return internal_error(n.describe() + ": branch node '" + bn->name + "' reads unknown '" + v->name + "'");
      m->inputs.push_back(o);
    }
    for (ir::Value* v : bn->outputs) {
      ir::Value* o = nullptr;
      if (v) {
        auto d = direct.find(v);
        o = d != direct.end() ? d->second : g.find_value(v->name) ? g.add_unique_value(v->name) : g.add_value(v->name);
        o->producer = m;
        map[v] = o;
      }
      m->outputs.push_back(o);
    }
  }
  for (size_t i = 0; i < br.outputs.size(); ++i) {
    ir::Value* out = n.outputs[i];
    if (!out || out->producer != &n) continue;
    ir::Value* src = outer_of(br.outputs[i]);
    if (!src) return internal_error(n.describe() + ": branch output '" + br.outputs[i]->name + "' is never produced");
    ir::Node* id = add("Identity", n.name + "/" + out->name);
    id->inputs = {src};
    id->outputs = {out};
    out->producer = id;
  }
  n.outputs.clear();
  n.dead = true;
  return Status::ok();
}

// "; ... --freeze cond_input": the model inputs an If's condition is computed from, for errors
// where deciding the If at build time would help.
std::string freeze_hint(InferContext& c) {
  std::vector<std::string> names;
  std::vector<const ir::Value*> todo{c.input(0)};
  std::unordered_set<const ir::Value*> seen;
  while (!todo.empty()) {
    const ir::Value* v = todo.back();
    todo.pop_back();
    if (!v || !seen.insert(v).second) continue;
    if (v->is_graph_input) names.push_back(v->name);
    if (v->producer)
      for (const ir::Value* in : v->producer->inputs) todo.push_back(in);
  }
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return "; both branches of an If decided at run time must build at these shapes" +
         (list.empty() ? std::string() : " (--freeze " + list + " to decide it at build time)");
}

Status infer_if(InferContext& c) {
  KILN_TRY(require_explicit_inputs(c, 1, 1));
  if (c.input_dtype(0) != DType::kBool || shape_numel(c.input_shape(0)) != 1)
    return c.fail("the condition must be one bool, got " + value_desc(c.input(0)));
  KILN_TRY(order_subgraphs(c, {"then_branch", "else_branch"}));
  materialize_outputs(c);
  ir::Graph *then_g, *else_g;
  KILN_TRY(get_subgraph(c, "then_branch", &then_g));
  KILN_TRY(get_subgraph(c, "else_branch", &else_g));
  if (const HostTensor* cond = c.const_input(0)) return inline_branch(c, cond->as<uint8_t>()[0] ? *then_g : *else_g);
  for (auto [attr, g] : {std::pair<const char*, ir::Graph*>{"then_branch", then_g}, {"else_branch", else_g}}) {
    Status st = infer_subgraph(c, attr, *g, {});
    if (!st) return Status(st.code(), st.message() + freeze_hint(c));
  }
  if (then_g->outputs.size() != c.num_outputs() || else_g->outputs.size() != c.num_outputs())
    return c.fail("the branches have " + std::to_string(then_g->outputs.size()) + " and " +
                  std::to_string(else_g->outputs.size()) + " outputs, the If " + std::to_string(c.num_outputs()));
  for (size_t i = 0; i < c.num_outputs(); ++i) {
    const ir::Value *a = then_g->outputs[i], *b = else_g->outputs[i];
    if (a->dtype != b->dtype || a->shape != b->shape)
      return c.fail_unsupported("output " + std::to_string(i) + " is " + value_desc(a) + " from then_branch but " +
                                value_desc(b) + " from else_branch; kiln plans are statically shaped, so an If "
                                "decided at run time needs both branches to agree (--freeze the inputs its "
                                "condition depends on to pick the branch at build time)");
    c.set_output(i, a->dtype, a->shape);
  }
  prune_captures(c.node());
  return Status::ok();
}

// Loops that run a build-time number of times are unrolled while they are small: the body is
// copied into the enclosing graph once per iteration, each copy inferred right away with its
// iteration number and condition as constants, so what depends on them (a Slice at the
// iteration number, say) folds and the whole loop runs on the device like any other nodes.
constexpr int64_t kMaxUnrolledIterations = 256;
constexpr size_t kMaxUnrolledNodes = 2048;

// A body copy's nodes go in after the Loop; `added` lists them (to undo an unrolling that turns
// out impossible: a copy whose condition output is not a build-time constant).
struct Unroller {
  InferContext& c;
  ir::Node* next = nullptr;
  std::vector<ir::Node*> added;

  ir::Node* add(const std::string& op, const std::string& name) {
    ir::Graph& g = c.graph();
    ir::Node* m = next ? g.insert_node_before(next, op, name) : g.add_node(op, name);
    added.push_back(m);
    return m;
  }
  Status infer(ir::Node* m) { return infer_and_fold_node(*m, c.graph(), c.graph().opsets.at("")); }
  void undo() {
    for (ir::Node* m : added) m->dead = true;
  }
};

Status unroll_loop(InferContext& c, ir::Graph& body, int64_t trips, bool cond, bool* done) {
  *done = false;
  ir::Node& n = c.node();
  ir::Graph& g = c.graph();
  Unroller u{c};
  for (size_t i = 0; i + 1 < g.nodes().size(); ++i)
    if (g.nodes()[i].get() == &n) u.next = g.nodes()[i + 1].get();
  const size_t n_state = n.explicit_inputs() - 2, n_scan = body.outputs.size() - 1 - n_state;
  std::vector<ir::Value*> state(n.inputs.begin() + 2, n.inputs.begin() + 2 + n_state);
  std::vector<std::vector<ir::Value*>> slices(n_scan);
  for (int64_t i = 0; i < trips && cond; ++i) {
    std::unordered_map<const ir::Value*, ir::Value*> map;
    for (const ir::Graph::Capture& cap : body.captures) map[cap.inner] = n.inputs[cap.operand];
    const bool one = body.inputs[0]->has_shape && body.inputs[0]->shape == Shape{1};
    auto iter = std::make_shared<HostTensor>(DType::kInt64, one ? Shape{1} : Shape{});
    *iter->as<int64_t>() = i;
    map[body.inputs[0]] = g.add_constant(n.name + "/iteration", iter);
    auto cnd = std::make_shared<HostTensor>(DType::kBool, body.inputs[1]->has_shape && body.inputs[1]->shape == Shape{1}
                                                              ? Shape{1} : Shape{});
    *cnd->as<uint8_t>() = 1;
    map[body.inputs[1]] = g.add_constant(n.name + "/condition", cnd);
    for (size_t k = 0; k < n_state; ++k) map[body.inputs[2 + k]] = state[k];
    auto outer_of = [&](ir::Value* v) -> ir::Value* {
      auto it = map.find(v);
      if (it != map.end()) return it->second;
      if (!v->constant) return nullptr;
      return map[v] = g.add_constant(v->name, v->constant);
    };
    const std::string tag = "/" + std::to_string(i);
    for (const auto& bn : body.nodes()) {
      ir::Node* m = u.add(bn->op_type, bn->name + tag);
      m->domain = bn->domain;
      m->attrs = bn->attrs;
      m->fused = bn->fused;
      for (ir::Value* v : bn->inputs) {
        ir::Value* o = v ? outer_of(v) : nullptr;
        if (v && !o) return internal_error(n.describe() + ": body node '" + bn->name + "' reads unknown '" + v->name + "'");
        m->inputs.push_back(o);
      }
      for (ir::Value* v : bn->outputs) {
        ir::Value* o = v ? g.add_unique_value(v->name + tag) : nullptr;
        if (o) {
          o->producer = m;
          map[v] = o;
        }
        m->outputs.push_back(o);
      }
      KILN_TRY_CTX(u.infer(m), n.describe() + " unrolled iteration " + std::to_string(i));
    }
    std::vector<ir::Value*> outs;
    for (ir::Value* v : body.outputs) {
      outs.push_back(outer_of(v));
      if (!outs.back()) return internal_error(n.describe() + ": body output '" + v->name + "' is never produced");
    }
    const HostTensor* cv = outs[0]->constant.get();
    if (!cv || cv->dtype() != DType::kBool || cv->numel() != 1) {
      u.undo();
      return Status::ok();
    }
    cond = cv->as<uint8_t>()[0] != 0;
    for (size_t k = 0; k < n_state; ++k) state[k] = outs[1 + k];
    for (size_t k = 0; k < n_scan; ++k) slices[k].push_back(outs[1 + n_state + k]);
  }
  if (n_scan && slices[0].empty()) {  // no iteration: the slices' shape is unknown here
    u.undo();
    return Status::ok();
  }
  for (size_t k = 0; k < n_state; ++k) {
    if (!n.outputs[k]) continue;
    ir::Node* id = u.add("Identity", n.name + "/" + n.outputs[k]->name);
    id->inputs = {state[k]};
    id->outputs = {n.outputs[k]};
    n.outputs[k]->producer = id;
    KILN_TRY(u.infer(id));
  }
  const bool axes_input = g.opsets.at("") >= 13;
  for (size_t k = 0; k < n_scan; ++k) {
    ir::Value* out = n.outputs[n_state + k];
    if (!out) continue;
    ir::Node* cat = nullptr;
    std::vector<ir::Value*> parts;
    for (ir::Value* sl : slices[k]) {
      ir::Node* un = u.add("Unsqueeze", n.name + "/stack_" + sl->name);
      un->inputs = {sl};
      if (axes_input) {
        auto axes = std::make_shared<HostTensor>(DType::kInt64, Shape{1});
        *axes->as<int64_t>() = 0;
        un->inputs.push_back(g.add_constant(n.name + "/axes", axes));
      } else {
        un->attrs.set("axes", std::vector<int64_t>{0});
      }
      un->outputs = {g.add_unique_value(sl->name + "/stacked")};
      un->outputs[0]->producer = un;
      KILN_TRY(u.infer(un));
      parts.push_back(un->outputs[0]);
    }
    cat = u.add("Concat", n.name + "/" + out->name);
    cat->attrs.set("axis", int64_t{0});
    cat->inputs = parts;
    cat->outputs = {out};
    out->producer = cat;
    KILN_TRY(u.infer(cat));
  }
  n.outputs.clear();
  n.dead = true;
  *done = true;
  return Status::ok();
}

bool has_subgraph_nodes(const ir::Graph& g) {
  for (const auto& m : g.nodes())
    if (!m->subgraphs.empty()) return true;
  return false;
}

// Loop: inputs M (trip count, optional), cond (optional), N loop-carried values; body inputs
// (iteration, condition, N values), outputs (condition, N values, K per-iteration values that
// stack into the scan outputs [iterations, ...]).
Status infer_loop(InferContext& c) {
  KILN_TRY(require_explicit_inputs(c, 2, 1 << 20));
  KILN_TRY(order_subgraphs(c, {"body"}));
  materialize_outputs(c);
  ir::Graph* body;
  KILN_TRY(get_subgraph(c, "body", &body));
  const size_t n_carried = c.node().explicit_inputs() - 2;
  if (c.has_input(0) && (!dtype_is_integer(c.input_dtype(0)) || shape_numel(c.input_shape(0)) != 1))
    return c.fail("the trip count M must be one integer, got " + value_desc(c.input(0)));
  if (c.has_input(1) && (c.input_dtype(1) != DType::kBool || shape_numel(c.input_shape(1)) != 1))
    return c.fail("the condition must be one bool, got " + value_desc(c.input(1)));
  std::vector<std::pair<DType, Shape>> formal;
  // The iteration number and condition are scalars; a body declaring them [1] gets [1].
  for (size_t i = 0; i < 2; ++i) {
    const bool one = i < body->inputs.size() && body->inputs[i]->has_shape && body->inputs[i]->shape == Shape{1};
    formal.push_back({i == 0 ? DType::kInt64 : DType::kBool, one ? Shape{1} : Shape{}});
  }
  for (size_t i = 0; i < n_carried; ++i) {
    if (!c.has_input(2 + i)) return c.fail("loop-carried input " + std::to_string(i) + " is missing");
    formal.push_back({c.input_dtype(2 + i), c.input_shape(2 + i)});
  }
  if (body->outputs.size() < 1 + n_carried)
    return c.fail("the body has " + std::to_string(body->outputs.size()) + " outputs; it needs the condition and " +
                  std::to_string(n_carried) + " loop-carried values");
  const HostTensor* m_const = c.const_input(0);
  const HostTensor* cond_const = c.const_input(1);
  const bool unrollable = !has_subgraph_nodes(*body) && (!c.has_input(1) || cond_const);
  if (unrollable && m_const) {
    const int64_t trips = tensor_int_at(m_const->view(), 0);
    if (trips > 0 && trips <= kMaxUnrolledIterations &&
        static_cast<size_t>(trips) * body->nodes().size() <= kMaxUnrolledNodes) {
      bool done;
      KILN_TRY(unroll_loop(c, *body, trips, cond_const ? cond_const->as<uint8_t>()[0] != 0 : true, &done));
      if (done) return Status::ok();
    }
  }
  Status st = infer_subgraph(c, "body", *body, formal);
  if (!st && st.message().find("must be known at build time") != std::string::npos && !has_subgraph_nodes(*body)) {
    // The body needs something only unrolling makes constant: ask for the trip count and
    // condition at build time (the message names them, so --freeze knows what to fix).
    std::vector<int64_t> unused;
    const std::string why = "; it is needed to unroll the loop, because its body has: " + st.message();
    if (c.has_input(0) && !m_const) return Status(st.code(), c.const_ints(0, &unused).message() + why);
    if (c.has_input(1) && !cond_const) return Status(st.code(), c.const_ints(1, &unused).message() + why);
  }
  KILN_TRY(st);
  const size_t n_scan = body->outputs.size() - 1 - n_carried;
  if (c.num_outputs() != n_carried + n_scan)
    return c.fail("has " + std::to_string(c.num_outputs()) + " outputs; its body makes " +
                  std::to_string(n_carried + n_scan));
  const ir::Value* cond_out = body->outputs[0];
  if (cond_out->dtype != DType::kBool || shape_numel(cond_out->shape) != 1)
    return c.fail("the body's condition output must be one bool, got " + value_desc(cond_out));
  for (size_t i = 0; i < n_carried; ++i) {
    const ir::Value* v = body->outputs[1 + i];
    if (v->dtype != formal[2 + i].first || v->shape != formal[2 + i].second)
      return c.fail_unsupported("loop-carried value " + std::to_string(i) + " ('" + v->name + "') enters as " +
                                dtype_name(formal[2 + i].first) + " " + shape_str(formal[2 + i].second) +
                                " but leaves the body as " + value_desc(v) +
                                "; kiln plans are statically shaped, so it must keep its shape");
    c.set_output(i, v->dtype, v->shape);
  }
  if (n_scan) {
    // The scan outputs stack one slice per iteration: their shape needs the trip count now.
    if (!c.has_input(0))
      return c.fail_unsupported("a Loop without a trip count cannot have scan outputs in a statically shaped plan");
    std::vector<int64_t> m;
    KILN_TRY(c.const_ints(0, &m));
    const int64_t trips = std::max<int64_t>(m[0], 0);
    if (trips > (int64_t{1} << 31))
      return c.fail_unsupported("trip count " + std::to_string(m[0]) + " is too large to size the scan outputs");
    for (size_t k = 0; k < n_scan; ++k) {
      const ir::Value* v = body->outputs[1 + n_carried + k];
      Shape s{trips};
      s.insert(s.end(), v->shape.begin(), v->shape.end());
      c.set_output(n_carried + k, v->dtype, s);
    }
  }
  prune_captures(c.node());
  return Status::ok();
}

Status normalized_axes(InferContext& c, const char* attr, size_t count, const std::vector<int64_t>& ranks,
                       std::vector<int64_t>* out) {
  std::vector<int64_t> a = c.attrs().get_ints(attr, std::vector<int64_t>(count, 0));
  if (a.size() != count)
    return c.fail(std::string(attr) + " has " + std::to_string(a.size()) + " entries for " + std::to_string(count) +
                  " tensors");
  for (size_t i = 0; i < count; ++i)
    KILN_TRY_CTX(normalize_axis(a[i], ranks[i], &a[i]), c.node().describe() + " " + attr);
  *out = a;
  return Status::ok();
}

Status directions(InferContext& c, const char* attr, size_t count, std::vector<int64_t>* out) {
  *out = c.attrs().get_ints(attr, std::vector<int64_t>(count, 0));
  if (out->size() != count)
    return c.fail(std::string(attr) + " has " + std::to_string(out->size()) + " entries for " + std::to_string(count) +
                  " tensors");
  for (int64_t d : *out)
    if (d != 0 && d != 1) return c.fail(std::string(attr) + " entries must be 0 or 1, got " + std::to_string(d));
  return Status::ok();
}

// Scan: N state values and M scan inputs, sliced along their scan axis; the body maps (state,
// slices) to (state, K per-iteration outputs) that stack along the scan output axes. Scan-8 has a
// leading batch dim on every input and output (and sequence_lens); the runtime kernel gets one
// canonical form: normalized axes and directions for every tensor, plus batched=1 for Scan-8.
Status infer_scan(InferContext& c) {
  KILN_TRY(order_subgraphs(c, {"body"}));
  materialize_outputs(c);
  ir::Graph* body;
  KILN_TRY(get_subgraph(c, "body", &body));
  const bool batched = c.version() < 9;
  const int64_t m = c.attrs().get_int("num_scan_inputs", -1);
  const size_t first = batched ? 1 : 0;
  const size_t n_in = c.node().explicit_inputs();
  if (m < 1 || static_cast<size_t>(m) + first > n_in)
    return c.fail("num_scan_inputs must be between 1 and the number of inputs, got " + std::to_string(m));
  const size_t n_state = n_in - first - static_cast<size_t>(m);
  for (size_t i = first; i < n_in; ++i)
    if (!c.has_input(i)) return c.fail("input " + std::to_string(i) + " is missing");
  int64_t batch = 1;
  if (batched) {
    batch = c.input_shape(first).empty() ? -1 : c.input_shape(first)[0];
    for (size_t i = first; i < n_in; ++i)
      if (c.input_shape(i).empty() || c.input_shape(i)[0] != batch)
        return c.fail("every input needs the batch dim " + std::to_string(batch) + " first, input " +
                      std::to_string(i) + " is " + shape_str(c.input_shape(i)));
    if (c.has_input(0)) {
      if (!dtype_is_integer(c.input_dtype(0)) || c.input_shape(0) != Shape{batch})
        return c.fail("sequence_lens must be " + std::to_string(batch) + " integers, got " + value_desc(c.input(0)));
    }
  }
  // Per-iteration view of every input: Scan-8's without its batch dim.
  auto item_shape = [&](size_t i) {
    Shape s = c.input_shape(i);
    if (batched) s.erase(s.begin());
    return s;
  };
  std::vector<int64_t> in_ranks;
  for (size_t j = 0; j < static_cast<size_t>(m); ++j)
    in_ranks.push_back(static_cast<int64_t>(item_shape(first + n_state + j).size()));
  std::vector<int64_t> in_axes, in_dirs;
  if (batched) {
    in_axes.assign(m, 0);
    KILN_TRY(directions(c, "directions", m, &in_dirs));
  } else {
    KILN_TRY(normalized_axes(c, "scan_input_axes", m, in_ranks, &in_axes));
    KILN_TRY(directions(c, "scan_input_directions", m, &in_dirs));
  }
  std::vector<std::pair<DType, Shape>> formal;
  for (size_t i = 0; i < n_state; ++i) formal.push_back({c.input_dtype(first + i), item_shape(first + i)});
  int64_t len = -1;
  for (size_t j = 0; j < static_cast<size_t>(m); ++j) {
    Shape s = item_shape(first + n_state + j);
    if (s.empty()) return c.fail("scan input " + std::to_string(j) + " is a scalar; it needs a scan axis");
    const int64_t l = s[in_axes[j]];
    if (len >= 0 && l != len)
      return c.fail("scan inputs differ in sequence length (" + std::to_string(len) + " and " + std::to_string(l) + ")");
    len = l;
    s.erase(s.begin() + in_axes[j]);
    formal.push_back({c.input_dtype(first + n_state + j), s});
  }
  KILN_TRY(infer_subgraph(c, "body", *body, formal));
  if (body->outputs.size() < n_state)
    return c.fail("the body has " + std::to_string(body->outputs.size()) + " outputs for " + std::to_string(n_state) +
                  " state values");
  const size_t n_scan_out = body->outputs.size() - n_state;
  if (c.num_outputs() != body->outputs.size())
    return c.fail("has " + std::to_string(c.num_outputs()) + " outputs; its body makes " +
                  std::to_string(body->outputs.size()));
  auto batched_shape = [&](Shape s) {
    if (batched) s.insert(s.begin(), batch);
    return s;
  };
  for (size_t i = 0; i < n_state; ++i) {
    const ir::Value* v = body->outputs[i];
    if (v->dtype != formal[i].first || v->shape != formal[i].second)
      return c.fail_unsupported("state value " + std::to_string(i) + " enters the body as " +
                                dtype_name(formal[i].first) + " " + shape_str(formal[i].second) + " but leaves as " +
                                value_desc(v) + "; kiln plans are statically shaped, so it must keep its shape");
    c.set_output(i, v->dtype, batched_shape(v->shape));
  }
  std::vector<int64_t> out_ranks, out_axes, out_dirs;
  for (size_t k = 0; k < n_scan_out; ++k) out_ranks.push_back(static_cast<int64_t>(body->outputs[n_state + k]->shape.size()) + 1);
  if (batched) {
    out_axes.assign(n_scan_out, 0);
    out_dirs.assign(n_scan_out, 0);
  } else {
    KILN_TRY(normalized_axes(c, "scan_output_axes", n_scan_out, out_ranks, &out_axes));
    KILN_TRY(directions(c, "scan_output_directions", n_scan_out, &out_dirs));
  }
  for (size_t k = 0; k < n_scan_out; ++k) {
    const ir::Value* v = body->outputs[n_state + k];
    Shape s = v->shape;
    s.insert(s.begin() + out_axes[k], len);
    c.set_output(n_state + k, v->dtype, batched_shape(s));
  }
  Attributes a;
  a.set("num_scan_inputs", m);
  a.set("scan_input_axes", in_axes);
  a.set("scan_input_directions", in_dirs);
  a.set("scan_output_axes", out_axes);
  a.set("scan_output_directions", out_dirs);
  a.set("batched", int64_t{batched ? 1 : 0});
  c.mutable_attrs() = a;
  prune_captures(c.node());
  return Status::ok();
}

}  // namespace

void register_control_flow_schemas(SchemaRegistry& r) {
  // Not foldable: the kernels need the subgraph runner, which constant folding does not have
  // (an If on a constant condition is inlined instead).
  r.add({"If", {1, 11, 13, 16, 19, 21, 23, 24}, infer_if, false}).takes_subgraphs();
  r.add({"Loop", {1, 11, 13, 16, 19, 21, 23, 24}, infer_loop, false}).takes_subgraphs();
  r.add({"Scan", {8, 9, 11, 16, 19, 21, 23, 24}, infer_scan, false}).takes_subgraphs();
}

}  // namespace kiln
