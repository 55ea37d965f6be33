// One BERT-style encoder layer built as transformers' BERT exports it (opset 17), with fixed
// weights, and random inputs for it: shared by the tests of what the compiler makes of such a
// layer (the FP16 fallback of INT8/FP8 plans, the packed Q/K/V projections).
#pragma once
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "compiler/quant/calibration_set.h"
#include "tests/ops/graph_builder.h"

namespace kiln::test::encoder_layer {

constexpr int64_t kBatch = 2, kSeq = 16, kDim = 64, kHeads = 2, kHeadDim = kDim / kHeads, kFfn = 128;

inline HostTensor normal(const Shape& s, std::mt19937& rng, double sd) {
  HostTensor t(DType::kFloat32, s);
  std::normal_distribution<float> n(0.f, static_cast<float>(sd));
  for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = n(rng);
  return t;
}

inline HostTensor filled(const Shape& s, float v) {
  HostTensor t(DType::kFloat32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = v;
  return t;
}

inline HostTensor ints(const std::vector<int64_t>& v) {
  HostTensor t(DType::kInt64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.as<int64_t>()[i] = v[i];
  return t;
}

inline Attributes perm(const std::vector<int64_t>& p) {
  Attributes a;
  a.set("perm", p);
  return a;
}

// The ONNX node names the tests address.
struct Names {
  std::string ln1, ln2, softmax, qk, erf;
};

// x [B, S, D] -> LayerNorm -> Q/K/V projections -> heads -> MatMul(Q, K^T) / sqrt(d) -> Softmax
// -> MatMul(., V) -> output projection + x -> LayerNorm -> Linear -> erf-GELU -> Linear + residual,
// written as transformers' BERT exports it (opset 17). Fixed weights (seed 11) and input `x`.
inline Names encoder(GraphBuilder* b, const HostTensor& x) {
  std::mt19937 rng(11);
  Names names;
  const std::string in = b->input(x);
  auto layernorm = [&](const std::string& v) {
    Attributes a;
    a.set("axis", int64_t{-1});
    a.set("epsilon", 1e-5f);
    return b->node("LayerNormalization",
                   {v, b->constant(filled({kDim}, 1.1f)), b->constant(normal({kDim}, rng, 0.05))}, a);
  };
  auto linear = [&](const std::string& v, int64_t din, int64_t dout) {
    const std::string mm = b->node("MatMul", {v, b->constant(normal({din, dout}, rng, 1.0 / std::sqrt(din)))});
    return b->node("Add", {mm, b->constant(normal({dout}, rng, 0.05))});
  };
  auto heads = [&](const std::string& v) {
    const std::string r = b->node("Reshape", {v, b->constant(ints({kBatch, kSeq, kHeads, kHeadDim}))});
    return b->node("Transpose", {r}, perm({0, 2, 1, 3}));
  };
  names.ln1 = layernorm(in);
  const std::string q = heads(linear(names.ln1, kDim, kDim));
  const std::string k = heads(linear(names.ln1, kDim, kDim));
  const std::string v = heads(linear(names.ln1, kDim, kDim));
  names.qk = b->node("MatMul", {q, b->node("Transpose", {k}, perm({0, 1, 3, 2}))});
  const std::string scaled = b->node("Div", {names.qk, b->constant(filled({}, std::sqrt(float(kHeadDim))))});
  Attributes axis;
  axis.set("axis", int64_t{-1});
  names.softmax = b->node("Softmax", {scaled}, axis);
  const std::string ctx = b->node("MatMul", {names.softmax, v});
  const std::string merged =
      b->node("Reshape", {b->node("Transpose", {ctx}, perm({0, 2, 1, 3})), b->constant(ints({kBatch, kSeq, kDim}))});
  const std::string res1 = b->node("Add", {in, linear(merged, kDim, kDim)});
  names.ln2 = layernorm(res1);
  const std::string h = linear(names.ln2, kDim, kFfn);
  const std::string erf = names.erf = b->node("Erf", {b->node("Div", {h, b->constant(filled({}, std::sqrt(2.f)))})});
  const std::string gelu =
      b->node("Mul", {b->node("Mul", {h, b->node("Add", {erf, b->constant(filled({}, 1.f))})}),
                      b->constant(filled({}, 0.5f))});
  b->output(b->node("Add", {res1, linear(gelu, kFfn, kDim)}));
  return names;
}

// Calibration samples and the held-out input: activations around +-1 with a few wider ones.
inline std::vector<CalibrationSample> samples(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<CalibrationSample> out;
  for (int i = 0; i < n; ++i) out.push_back({{"x0", normal({kBatch, kSeq, kDim}, rng, 1.0)}});
  return out;
}

}  // namespace kiln::test::encoder_layer
