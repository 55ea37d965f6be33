// Fuses an activation (Relu, LeakyRelu, Clip with constant bounds, HardSigmoid, HardSwish,
// Sigmoid, Tanh, Elu, Selu, Softplus) into the Conv/ConvTranspose/Gemm/MatMul that feeds it,
// as the `activation` attributes of runtime/backends/cpu/linear_epilogue.h.
#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/ops/linear_fusion.h"
#include "compiler/passes/passes.h"
#include "runtime/backends/cpu/linear_epilogue.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
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
bool activation_of(const ir::Node& n, linear::Epilogue* e) {
  e->act = linear::activation_from_name(n.op_type);
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

}  // namespace

Status run_fuse_activation(ir::Graph& g, const PassContext&) {
  linear::ConsumerMap consumers = g.consumers();
  for (const auto& np : g.nodes()) {
    ir::Node& n = *np;
    if (!linear::is_linear_node(n) || n.attrs.has(linear::kAttrActivation)) continue;
    if (n.attrs.get_int(linear::kAttrResidual, 0) == linear::kResidualAfterActivation) continue;
    ir::Node* act = linear::sole_consumer(g, consumers, n.outputs[0]);
    if (!act || !act->domain.empty() || act->inputs.empty() || act->inputs[0] != n.outputs[0] ||
        act->outputs.size() != 1 || !act->outputs[0])
      continue;
    const ir::Value* out = act->outputs[0];
    if (out->dtype != DType::kFloat32 || out->shape != n.outputs[0]->shape) continue;
    linear::Epilogue e;
    if (!activation_of(*act, &e)) continue;
    n.attrs.set(linear::kAttrActivation, act->op_type);
    n.attrs.set(linear::kAttrActAlpha, e.act_alpha);
    n.attrs.set(linear::kAttrActBeta, e.act_beta);
    linear::absorb(&n, act, &consumers);
  }
  return Status::ok();
}

}  // namespace kiln
