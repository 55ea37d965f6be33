// Fuses an activation (Relu, LeakyRelu, Clip with constant bounds, HardSigmoid, HardSwish,
// Sigmoid, Tanh, Elu, Selu, Softplus, Gelu) into the Conv/ConvTranspose/Gemm/MatMul that feeds it,
// as the `activation` attributes of runtime/ops/linear_epilogue.h.
#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/ops/linear_fusion.h"
#include "compiler/passes/passes.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {

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
    if (!linear::activation_epilogue(*act, &e)) continue;
    n.attrs.set(linear::kAttrActivation, std::string(linear::activation_name(e.act)));
    n.attrs.set(linear::kAttrActAlpha, e.act_alpha);
    n.attrs.set(linear::kAttrActBeta, e.act_beta);
    linear::absorb(&n, act, &consumers);
  }
  return Status::ok();
}

}  // namespace kiln
