// Folds inference BatchNormalization into the Conv/ConvTranspose/Gemm that feeds it:
// BN(y) = y * s + (b - mean * s) with s = scale / sqrt(var + eps) per channel, so the weights
// of each output channel are scaled by s and the bias becomes (bias - mean) * s + b. The
// folded weights and bias are new constants (the originals may be shared with other nodes).
#include <cmath>

#include "compiler/ops/linear_fusion.h"
#include "compiler/passes/passes.h"

namespace kiln {
namespace {

bool float_const(const ir::Value* v, int64_t numel) {
  return v && v->constant && v->dtype == DType::kFloat32 && v->constant->numel() == numel;
}

// Whether `bn` is an inference-form BatchNormalization with per-channel constant parameters
// for `channels` channels; fills s (scale) and t (shift).
bool bn_params(const ir::Node& bn, int64_t channels, std::vector<float>* s, std::vector<float>* t) {
  if (bn.inputs.size() != 5) return false;
  for (size_t i = 1; i < 5; ++i)
    if (!float_const(bn.inputs[i], channels)) return false;
  if (bn.attrs.get_int("training_mode", 0) != 0) return false;
  if (bn.version < 7 && bn.attrs.get_int("is_test", 1) == 0 && bn.version >= 6) return false;
  // Extra outputs (running statistics) only exist in training mode; refuse if any is read.
  for (size_t i = 1; i < bn.outputs.size(); ++i)
    if (bn.outputs[i]) return false;
  const float eps = bn.attrs.get_float("epsilon", 1e-5f);
  const float* scale = bn.inputs[1]->constant->as<float>();
  const float* bias = bn.inputs[2]->constant->as<float>();
  const float* mean = bn.inputs[3]->constant->as<float>();
  const float* var = bn.inputs[4]->constant->as<float>();
  s->resize(channels);
  t->resize(channels);
  for (int64_t c = 0; c < channels; ++c) {
    (*s)[c] = scale[c] / std::sqrt(var[c] + eps);
    (*t)[c] = bias[c] - mean[c] * (*s)[c];
  }
  return true;
}

// Folds into a convolution; output channel m of Conv W is W[m], of ConvTranspose W[c][m % Mg]
// for the input channels c of m's group.
bool fold_into_conv(ir::Graph& g, ir::Node& conv, const std::vector<float>& s, const std::vector<float>& t) {
  ir::Value* w = conv.inputs[1];
  ir::Value* b = conv.input(2);
  if (!w->constant || (b && !b->constant)) return false;
  const int64_t M = static_cast<int64_t>(s.size());
  HostTensor nw = *w->constant;
  float* wp = nw.as<float>();
  const Shape& ws = nw.shape();
  int64_t ksize = 1;
  for (size_t i = 2; i < ws.size(); ++i) ksize *= ws[i];
  if (conv.op_type == "Conv") {
    const int64_t per = ws[1] * ksize;
    for (int64_t m = 0; m < ws[0]; ++m)
      for (int64_t i = 0; i < per; ++i) wp[m * per + i] *= s[m];
  } else {
    const int64_t group = conv.attrs.get_int("group", 1);
    const int64_t C = ws[0], Mg = ws[1], Cg = C / group;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t mg = 0; mg < Mg; ++mg) {
        const float f = s[(c / Cg) * Mg + mg];
        for (int64_t k = 0; k < ksize; ++k) wp[(c * Mg + mg) * ksize + k] *= f;
      }
  }
  HostTensor nb(DType::kFloat32, {M});
  for (int64_t m = 0; m < M; ++m) nb.as<float>()[m] = (b ? b->constant->as<float>()[m] * s[m] : 0.f) + t[m];
  conv.inputs[1] = linear::new_constant(g, w->name + "_bnfold", std::move(nw));
  if (conv.inputs.size() < 3) conv.inputs.resize(3, nullptr);
  conv.inputs[2] = linear::new_constant(g, (b ? b->name : conv.name + "_bias") + "_bnfold", std::move(nb));
  return true;
}

// Gemm: y = alpha*A*B + beta*C, BN over columns j: scale B's column j, C' = beta*C*s + t, beta 1.
bool fold_into_gemm(ir::Graph& g, ir::Node& gemm, const std::vector<float>& s, const std::vector<float>& t) {
  ir::Value* w = gemm.inputs[1];
  ir::Value* c = gemm.input(2);
  if (!w->constant || (c && !c->constant)) return false;
  const int64_t N = static_cast<int64_t>(s.size());
  const int64_t M = gemm.outputs[0]->shape[0];
  const bool tb = gemm.attrs.get_int("transB", 0) != 0;
  const float beta = gemm.attrs.get_float("beta", 1.f);
  HostTensor nw = *w->constant;
  float* wp = nw.as<float>();
  const int64_t K = nw.numel() / N;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) (tb ? wp[j * K + k] : wp[k * N + j]) *= s[j];
  // C keeps its rows when it has M of them, else becomes a [N] vector.
  const Shape cs = c ? c->shape : Shape{};
  const int64_t cm = cs.size() == 2 ? cs[0] : 1, cn = cs.empty() ? 1 : cs.back();
  const int64_t rows = cm == M && M > 1 ? M : 1;
  HostTensor nc(DType::kFloat32, rows > 1 ? Shape{M, N} : Shape{N});
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float cv = 0.f;
      if (c && beta != 0.f) cv = beta * c->constant->as<float>()[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
      nc.as<float>()[i * N + j] = cv * s[j] + t[j];
    }
  gemm.inputs[1] = linear::new_constant(g, w->name + "_bnfold", std::move(nw));
  if (gemm.inputs.size() < 3) gemm.inputs.resize(3, nullptr);
  gemm.inputs[2] = linear::new_constant(g, (c ? c->name : gemm.name + "_bias") + "_bnfold", std::move(nc));
  gemm.attrs.set("beta", 1.f);
  return true;
}

}  // namespace

Status run_fold_batchnorm(ir::Graph& g, const PassContext&) {
  linear::ConsumerMap consumers = g.consumers();
  for (const auto& np : g.nodes()) {
    ir::Node& n = *np;
    if (!linear::is_linear_node(n) || n.op_type == "MatMul") continue;
    // A node that already carries a fused epilogue cannot take the affine map after it.
    if (n.attrs.has("activation") || n.attrs.has("residual")) continue;
    ir::Node* bn = linear::sole_consumer(g, consumers, n.outputs[0]);
    if (!bn || bn->op_type != "BatchNormalization" || bn->dead || bn->inputs.empty() ||
        bn->inputs[0] != n.outputs[0])
      continue;
    const Shape& y = n.outputs[0]->shape;
    if (y.size() < 2) continue;
    std::vector<float> s, t;
    if (!bn_params(*bn, y[1], &s, &t)) continue;
    const bool ok = n.op_type == "Gemm" ? fold_into_gemm(g, n, s, t) : fold_into_conv(g, n, s, t);
    if (ok) linear::absorb(&n, bn, &consumers);
  }
  return Status::ok();
}

}  // namespace kiln
