// The fused epilogue of the runtime ops Conv, ConvTranspose, Gemm and MatMul: the one
// convention shared by the compiler's fusion passes and the CPU and OpenCL kernels.
//
// Inputs of the four runtime ops:
//   0, 1  the two operands (X, W for convolutions; A, B for Gemm/MatMul)
//   2     bias, optional (Conv/ConvTranspose: [M] per output channel; Gemm: C, unidirectionally
//         broadcastable to [M, N] and scaled by beta; MatMul: a tensor broadcastable to the last
//         two output dims [M, N] with every other dim 1, added as is — MatMul+Add(bias) fusion)
//   3     residual, optional: a tensor of exactly the output's shape, added elementwise
// Attributes added by fusion (absent = not fused):
//   activation        string: one of the names in Activation below ("Relu", "Clip", ...)
//   activation_alpha  float, activation_beta float: the activation's parameters, see act_params()
//   residual          int: kResidualBeforeActivation (y = act(acc + bias + R), the ResNet
//                     pattern) or kResidualAfterActivation (y = act(acc + bias) + R)
// So the output is, elementwise: y = alpha*acc + beta*bias; y += R (mode 1); y = act(y);
// y += R (mode 2).
#pragma once
#include <cmath>
#include <string>

#include "runtime/core/attrs.h"

namespace kiln::linear {

constexpr const char* kAttrActivation = "activation";
constexpr const char* kAttrActAlpha = "activation_alpha";
constexpr const char* kAttrActBeta = "activation_beta";
constexpr const char* kAttrResidual = "residual";
// int 1 on an FP32 node of a plan built with --allow-tf32: an OpenCL device may multiply its
// operands as TF32 on tensor cores (the CPU reference ignores it).
constexpr const char* kAttrAllowTf32 = "allow_tf32";
constexpr int kResidualNone = 0;
constexpr int kResidualBeforeActivation = 1;
constexpr int kResidualAfterActivation = 2;
constexpr size_t kBiasInput = 2;
constexpr size_t kResidualInput = 3;

// Codes are also the OpenCL kernels' `act` argument (kernels/gemm.cl, kernels/conv.cl).
enum class Activation : int {
  kNone = 0,
  kRelu = 1,
  kLeakyRelu = 2,    // alpha: slope (ONNX default 0.01)
  kClip = 3,         // alpha: min, beta: max
  kHardSigmoid = 4,  // alpha, beta (ONNX defaults 0.2, 0.5)
  kHardSwish = 5,
  kSigmoid = 6,
  kTanh = 7,
  kElu = 8,          // alpha (default 1.0)
  kSelu = 9,         // alpha, beta = gamma (defaults 1.67326..., 1.0507...)
  kSoftplus = 10,
  kGelu = 11,        // 0.5 x (1 + erf(x / sqrt 2)): ONNX Gelu, or the subgraph fuse_gelu collapses
  kGeluTanh = 12,    // Gelu with approximate="tanh"
};

// Code of an ONNX activation op name; kNone for names the epilogue does not implement.
inline Activation activation_from_name(const std::string& s) {
  if (s == "Relu") return Activation::kRelu;
  if (s == "LeakyRelu") return Activation::kLeakyRelu;
  if (s == "Clip") return Activation::kClip;
  if (s == "HardSigmoid") return Activation::kHardSigmoid;
  if (s == "HardSwish") return Activation::kHardSwish;
  if (s == "Sigmoid") return Activation::kSigmoid;
  if (s == "Tanh") return Activation::kTanh;
  if (s == "Elu") return Activation::kElu;
  if (s == "Selu") return Activation::kSelu;
  if (s == "Softplus") return Activation::kSoftplus;
  if (s == "Gelu") return Activation::kGelu;
  if (s == "GeluTanh") return Activation::kGeluTanh;
  return Activation::kNone;
}

// The name a plan's `activation` attribute stores for `a` (activation_from_name's inverse).
inline const char* activation_name(Activation a) {
  switch (a) {
    case Activation::kNone: return "";
    case Activation::kRelu: return "Relu";
    case Activation::kLeakyRelu: return "LeakyRelu";
    case Activation::kClip: return "Clip";
    case Activation::kHardSigmoid: return "HardSigmoid";
    case Activation::kHardSwish: return "HardSwish";
    case Activation::kSigmoid: return "Sigmoid";
    case Activation::kTanh: return "Tanh";
    case Activation::kElu: return "Elu";
    case Activation::kSelu: return "Selu";
    case Activation::kSoftplus: return "Softplus";
    case Activation::kGelu: return "Gelu";
    case Activation::kGeluTanh: return "GeluTanh";
  }
  return "";
}

struct Epilogue {
  Activation act = Activation::kNone;
  float act_alpha = 0.f, act_beta = 0.f;
  int residual = kResidualNone;
};

// Reads the fused-epilogue attributes; fails on an activation name it does not know (a plan
// from a newer writer) rather than silently skipping it.
inline Status read_epilogue(const Attributes& a, Epilogue* e) {
  *e = Epilogue();
  const std::string name = a.get_string(kAttrActivation, "");
  if (!name.empty()) {
    e->act = activation_from_name(name);
    if (e->act == Activation::kNone) return unsupported("unknown fused activation '" + name + "'");
  }
  e->act_alpha = a.get_float(kAttrActAlpha, 0.f);
  e->act_beta = a.get_float(kAttrActBeta, 0.f);
  e->residual = static_cast<int>(a.get_int(kAttrResidual, kResidualNone));
  if (e->residual < 0 || e->residual > 2) return invalid_plan("bad fused residual mode");
  return Status::ok();
}

// NaN propagates through every activation, as in ONNX Runtime and in the unfused Elementwise
// ops (fmin/fmax would turn a NaN into a bound: a fused Conv+Relu gave 0 where Relu gives NaN).
// Comparisons are false for NaN, so "x < lo ? lo : ..." keeps it. kernels/linear_activation.cl
// is the OpenCL copy of this function.
inline float clamp_keep_nan(float x, float lo, float hi) {
  const float t = x < lo ? lo : x;
  return t > hi ? hi : t;
}

inline float apply_activation(Activation act, float x, float a, float b) {
  switch (act) {
    case Activation::kNone: return x;
    case Activation::kRelu: return x < 0.f ? 0.f : x;
    case Activation::kLeakyRelu: return x >= 0.f ? x : a * x;
    case Activation::kClip: return clamp_keep_nan(x, a, b);
    case Activation::kHardSigmoid: return clamp_keep_nan(a * x + b, 0.f, 1.f);
    case Activation::kHardSwish: return x * clamp_keep_nan(x / 6.f + 0.5f, 0.f, 1.f);
    case Activation::kSigmoid: return 1.f / (1.f + std::exp(-x));
    case Activation::kTanh: return std::tanh(x);
    case Activation::kElu: return x >= 0.f ? x : a * (std::exp(x) - 1.f);
    case Activation::kSelu: return x > 0.f ? b * x : b * (a * std::exp(x) - a);
    case Activation::kSoftplus: return x > 20.f ? x : std::log1p(std::exp(x));
    // The Elementwise ops' formulas (runtime/ops/elementwise_ops.def), in float.
    case Activation::kGelu: return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752440f));
    case Activation::kGeluTanh:
      return 0.5f * x * (1.f + std::tanh(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
  }
  return x;
}

}  // namespace kiln::linear
