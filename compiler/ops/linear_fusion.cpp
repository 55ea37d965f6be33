#include "compiler/ops/linear_fusion.h"

#include <cmath>
#include <limits>
#include <memory>

#include "runtime/ops/kernel_api.h"

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

void append_fused(ir::Node* into, const ir::Node& part) {
  if (part.fused.empty()) into->fused.push_back(part.name);
  else into->fused.insert(into->fused.end(), part.fused.begin(), part.fused.end());
}

void absorb(ir::Node* producer, ir::Node* absorbed, ConsumerMap* consumers) {
  if (producer->fused.empty()) producer->fused.push_back(producer->name);
  append_fused(producer, *absorbed);
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

namespace {

bool run_cpu_kernel_exists(const ir::Node& n) { return cpu_registry().find(n.runtime_op) != nullptr; }


// Evaluates activation node `n` with its own CPU kernel on the values `xs` (its other inputs
// must be build-time constants). False when it cannot be evaluated.
bool probe(const ir::Node& n, const std::vector<float>& xs, std::vector<float>* ys) {
  if (!run_cpu_kernel_exists(n)) return false;
  PlanNode pn;
  pn.name = n.name;
  pn.op = n.runtime_op;
  pn.attrs = n.attrs;
  HostTensor x(DType::kFloat32, {static_cast<int64_t>(xs.size())});
  std::copy(xs.begin(), xs.end(), x.as<float>());
  std::vector<TensorView> in = {x.view()};
  for (size_t i = 1; i < n.inputs.size(); ++i) {
    const ir::Value* v = n.inputs[i];
    if (v && !v->constant) return false;
    in.push_back(v ? v->constant->view() : TensorView{});
  }
  HostTensor y(DType::kFloat32, x.shape());
  if (!run_cpu_kernel(pn, in, {y.view()}).is_ok()) return false;
  ys->assign(y.as<float>(), y.as<float>() + y.numel());
  return true;
}

// The epilogue form of activation node `n`, false when it cannot be fused. Parameters come
// from the ONNX attributes; Clip's bounds (attributes before opset 11, constant inputs after,
// possibly already folded away by the elementwise shape rule) from evaluating the node at
// +-FLT_MAX. Every fusion is then checked against the node's own kernel on probe values, so
// a parameter read wrongly can never change results.
}  // namespace

bool activation_epilogue(const ir::Node& n, Epilogue* e) {
  // ONNX names both GELUs Gelu (attribute approximate); the epilogue has a code for each.
  const bool gelu_tanh = n.op_type == "Gelu" && n.attrs.get_string("approximate", "none") == "tanh";
  e->act = gelu_tanh ? linear::Activation::kGeluTanh : linear::activation_from_name(n.op_type);
  if (e->act == linear::Activation::kNone) return false;
  e->act_alpha = e->act_beta = 0.f;
  switch (e->act) {
    case linear::Activation::kLeakyRelu: e->act_alpha = n.attrs.get_float("alpha", 0.01f); break;
    case linear::Activation::kHardSigmoid:
      e->act_alpha = n.attrs.get_float("alpha", 0.2f);
      e->act_beta = n.attrs.get_float("beta", 0.5f);
      break;
    case linear::Activation::kElu: e->act_alpha = n.attrs.get_float("alpha", 1.f); break;
    case linear::Activation::kSelu:
      e->act_alpha = n.attrs.get_float("alpha", 1.67326319217681884765625f);
      e->act_beta = n.attrs.get_float("gamma", 1.05070102214813232421875f);
      break;
    case linear::Activation::kClip: {
      std::vector<float> b;
      const float big = std::numeric_limits<float>::max();
      if (!probe(n, {-big, big}, &b)) return false;
      e->act_alpha = b[0] <= -big ? -std::numeric_limits<float>::infinity() : b[0];
      e->act_beta = b[1] >= big ? std::numeric_limits<float>::infinity() : b[1];
      break;
    }
    default: break;
  }
  static const std::vector<float> xs = {-1e4f, -100.f, -7.f, -6.f, -3.f,  -2.5f, -1.f, -0.5f, -0.1f, 0.f,
                                        0.1f,  0.5f,   1.f,  2.5f, 3.f,   6.f,   7.f,  100.f, 1e4f};
  std::vector<float> ys;
  if (!probe(n, xs, &ys)) return false;
  for (size_t i = 0; i < xs.size(); ++i) {
    const float want = linear::apply_activation(e->act, xs[i], e->act_alpha, e->act_beta);
    if (!(std::fabs(ys[i] - want) <= 1e-5f + 1e-4f * std::fabs(want))) return false;
  }
  return true;
}

}  // namespace kiln::linear
