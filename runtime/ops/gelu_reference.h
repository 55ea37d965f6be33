// GELU recognized by its values: the points at which kiln evaluates a candidate computation (an
// Elementwise program on the cpu fast path, runtime/backends/cpu/fast_elementwise.cpp; an
// elementwise subgraph of an exported model, compiler/passes/fuse_gelu.cpp) and which of GELU's
// two forms, if either, its results are. Evaluating instead of matching op patterns accepts
// every spelling of the formula and nothing that differs from it by more than float rounding.
#pragma once
#include <cmath>

namespace kiln {

enum class GeluForm { kNone, kErf, kTanh };

constexpr int kGeluProbePoints = 161;
inline float gelu_probe_point(int i) { return -8.f + 0.1f * static_cast<float>(i); }

// The form of f when ys[i] = f(gelu_probe_point(i)) for every i < kGeluProbePoints: erf
// (0.5 x (1 + erf(x / sqrt 2))), tanh (the approximation), or none; within 1e-6 + 1e-5 |GELU(x)|.
inline GeluForm gelu_form_of(const float* ys) {
  bool erf_form = true, tanh_form = true;
  for (int i = 0; i < kGeluProbePoints; ++i) {
    const double v = gelu_probe_point(i);
    const double g_erf = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    const double g_tanh = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    const double tol = 1e-6 + 1e-5 * std::fabs(g_erf);
    erf_form &= std::fabs(ys[i] - g_erf) <= tol;
    tanh_form &= std::fabs(ys[i] - g_tanh) <= tol;
  }
  return erf_form ? GeluForm::kErf : tanh_form ? GeluForm::kTanh : GeluForm::kNone;
}

}  // namespace kiln
