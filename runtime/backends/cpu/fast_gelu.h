// GELU for the cpu fast path's Elementwise programs that compute it (fast_elementwise.cpp):
// vectorized, and at least as accurate as the reference interpreter's scalar libm formula.
//
// Why not oneDNN's gelu_erf eltwise: its erf is off by ~2.5e-7 absolute near erf = -1, which is
// a 1e-4 relative error of GELU in the negative tail (the ONNX Gelu tests check 1e-6). Here,
// in double precision:
//   erf form   0.5 x erfc(-x / sqrt 2)            (no 1 + erf(x) cancellation)
//   tanh form  x / (1 + exp(-2 u)), u = sqrt(2/pi) (x + 0.044715 x^3)
// with erfc from Numerical Recipes' Chebyshev fit (relative error < 1.2e-7 for every x) and a
// range-reduced exp, so the result's relative error stays below ~1.3e-7 everywhere.
#pragma once
#include <cstdint>

namespace kiln {

// y[i] = gelu(x[i]) for i < n (x and y may be the same array).
void gelu_erf(const float* x, float* y, int64_t n);
void gelu_tanh(const float* x, float* y, int64_t n);

}  // namespace kiln
