// GELU for the cpu fast path's Elementwise programs that compute it (fast_elementwise.cpp):
// vectorized in float (16 lanes on AVX-512), relative error below ~5e-7 wherever GELU is above
// float's normal range (tests/unit/fast_gelu_test.cpp measures it against a double erf).
//
// Why not oneDNN's gelu_erf eltwise: its erf is off by ~2.5e-7 absolute near erf = -1, which is
// a 1e-4 relative error of GELU in the negative tail. Why not double precision (as before): it
// ran at ~1.5 ns an element, a fifth of a small BERT layer's time on 2 cores. Here:
//   erf form   0.5 x erfc(-x / sqrt 2)            (no 1 + erf(x) cancellation)
//   tanh form  x / (1 + exp(-2 u)), u = sqrt(2/pi) (x + 0.044715 x^3)
// with erfc from Numerical Recipes' Chebyshev fit (relative error < 1.2e-7 for every x) and
// fast_math.h's exp.
#pragma once
#include <cstdint>

namespace kiln {

// y[i] = gelu(x[i]) for i < n (x and y may be the same array).
void gelu_erf(const float* x, float* y, int64_t n);
void gelu_tanh(const float* x, float* y, int64_t n);

}  // namespace kiln
