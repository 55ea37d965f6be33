// Fuses the Adds after a Conv/ConvTranspose/Gemm/MatMul into its epilogue
// (runtime/ops/linear_epilogue.h):
//  - Add of a constant that broadcasts like a bias (per output channel for convolutions, over
//    the [M, N] result for Gemm/MatMul) is folded into the bias input (a new constant);
//  - Add of a runtime tensor of exactly the output's shape becomes the residual input (before
//    the activation when none is fused yet, the ResNet pattern; after it otherwise).
// Runs before and after fuse_activation so both Conv+Add+Relu and Conv+Relu+Add fuse.
#include <unordered_map>

#include "compiler/ops/linear_fusion.h"
#include "compiler/passes/passes.h"
#include "runtime/ops/linear_epilogue.h"

namespace kiln {
namespace {

// Right-aligns `s` to `rank` dims with leading 1s.
Shape align(const Shape& s, size_t rank) {
  Shape r(rank - std::min(rank, s.size()), 1);
  r.insert(r.end(), s.begin(), s.end());
  return r;
}

const float* fdata(const ir::Value* v) { return v->constant->as<float>(); }

// Conv/ConvTranspose: a constant that varies only along the channel dim.
bool fold_conv_bias(ir::Graph& g, ir::Node& n, const ir::Value* add) {
  const Shape& y = n.outputs[0]->shape;
  if (add->shape.size() > y.size()) return false;
  const Shape a = align(add->shape, y.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != 1 && !(i == 1 && a[i] == y[1])) return false;
  const int64_t M = y[1];
  ir::Value* b = n.input(linear::kBiasInput);
  if (b && !b->constant) return false;
  HostTensor nb(DType::kFloat32, {M});
  for (int64_t m = 0; m < M; ++m)
    nb.as<float>()[m] = (b ? fdata(b)[m] : 0.f) + fdata(add)[a[1] == 1 ? 0 : m];
  if (n.inputs.size() <= linear::kBiasInput) n.inputs.resize(linear::kBiasInput + 1, nullptr);
  n.inputs[linear::kBiasInput] = linear::new_constant(g, n.name + "_bias", std::move(nb));
  return true;
}

// Gemm/MatMul: a constant broadcasting over the last two dims [M, N] (every other dim 1).
// Gemm's existing C (times beta) is merged in; MatMul gets the bias input.
bool fold_matrix_bias(ir::Graph& g, ir::Node& n, const ir::Value* add) {
  const Shape& y = n.outputs[0]->shape;
  if (y.size() < 2 || add->shape.size() > y.size()) return false;
  if (n.op_type == "MatMul" && (n.inputs[0]->shape.size() < 2 || n.inputs[1]->shape.size() < 2)) return false;
  const Shape a = align(add->shape, y.size());
  for (size_t i = 0; i + 2 < a.size(); ++i)
    if (a[i] != 1) return false;
  const int64_t M = y[y.size() - 2], N = y.back();
  const int64_t am = a[a.size() - 2], an = a.back();
  if ((am != 1 && am != M) || (an != 1 && an != N)) return false;
  ir::Value* c = n.input(linear::kBiasInput);
  if (c && !c->constant) return false;
  float beta = 1.f;
  int64_t cm = 1, cn = 1;
  if (c) {
    if (n.op_type == "MatMul") return false;  // one bias Add only; later ones are residual-like
    beta = n.attrs.get_float("beta", 1.f);
    const Shape cs = align(c->shape, 2);
    cm = cs[0];
    cn = cs[1];
  }
  const int64_t rows = std::max(am, cm), cols = std::max(an, cn);
  HostTensor nb(DType::kFloat32, {rows, cols});
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      float v = fdata(add)[(am == 1 ? 0 : i) * an + (an == 1 ? 0 : j)];
      if (c) v += beta * fdata(c)[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
      nb.as<float>()[i * cols + j] = v;
    }
  if (n.inputs.size() <= linear::kBiasInput) n.inputs.resize(linear::kBiasInput + 1, nullptr);
  n.inputs[linear::kBiasInput] = linear::new_constant(g, n.name + "_bias", std::move(nb));
  if (n.op_type == "Gemm") n.attrs.set("beta", 1.f);
  return true;
}

}  // namespace

Status run_fuse_residual_add(ir::Graph& g, const PassContext&) {
  linear::ConsumerMap consumers = g.consumers();
  // Position of each node, to check that a residual is computed before the fused node runs.
  std::unordered_map<const ir::Node*, size_t> order;
  for (size_t i = 0; i < g.nodes().size(); ++i) order[g.nodes()[i].get()] = i;
  for (const auto& np : g.nodes()) {
    ir::Node& n = *np;
    if (!linear::is_linear_node(n)) continue;
    while (true) {
      const int residual = static_cast<int>(n.attrs.get_int(linear::kAttrResidual, linear::kResidualNone));
      const bool has_act = n.attrs.has(linear::kAttrActivation);
      if (residual == linear::kResidualAfterActivation) break;
      ir::Node* add = linear::sole_consumer(g, consumers, n.outputs[0]);
      if (!add || add->op_type != "Add" || add->inputs.size() != 2 || add->outputs.size() != 1 || !add->outputs[0])
        break;
      ir::Value* y = n.outputs[0];
      ir::Value* other = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
      if (!other || other->dtype != DType::kFloat32 || add->outputs[0]->shape != y->shape ||
          add->outputs[0]->dtype != DType::kFloat32)
        break;
      if (other->constant) {
        // A bias after the activation does not commute with it.
        if (has_act) break;
        const bool conv = n.op_type == "Conv" || n.op_type == "ConvTranspose";
        if (!(conv ? fold_conv_bias(g, n, other) : fold_matrix_bias(g, n, other))) break;
      } else {
        if (residual != linear::kResidualNone || other->shape != y->shape) break;
        // The residual must exist when this node runs.
        if (other->producer && (other->producer->dead || order.at(other->producer) >= order.at(&n))) break;
        if (n.inputs.size() <= linear::kResidualInput) n.inputs.resize(linear::kResidualInput + 1, nullptr);
        n.inputs[linear::kResidualInput] = other;
        n.attrs.set(linear::kAttrResidual, static_cast<int64_t>(has_act ? linear::kResidualAfterActivation
                                                                         : linear::kResidualBeforeActivation));
        consumers[other].push_back(&n);
      }
      linear::absorb(&n, add, &consumers);
    }
  }
  return Status::ok();
}

}  // namespace kiln
