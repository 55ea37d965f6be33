#include "runtime/backends/cpu/fast_gelu.h"

#include <cmath>

#include "runtime/backends/cpu/fast_loops.h"
#include "runtime/backends/cpu/fast_math.h"

namespace kiln {
namespace {

// erfc(z) for z = -x / sqrt 2, from x: Numerical Recipes' erfcc, t exp(-z^2 + P(t)) with
// t = 1 / (1 + |z| / 2) (relative error < 1.2e-7 for every z), in float. z^2 = x^2 / 2 is taken
// exactly as hi + lo (an FMA gives x*x's rounding error) and exp(-hi + (P - lo)) reduced from
// -hi exactly (exp_sum_f): rounding -z^2 + P to float would cost |z|^2 ulps, 2e-6 relative at
// x = -8. Beyond
// |x| = 20 erfc is 0 or 2 to float precision: x is clamped there, so x*x cannot overflow.
inline float erfc_of_minus_x_over_sqrt2(float x_in) {
  float x = std::isless(x_in, -20.f) ? -20.f : x_in;
  x = std::isgreater(x, 20.f) ? 20.f : x;
  const float a = std::fabs(x) * 0.70710678118654752440f;
  const float t = 1.f / (1.f + 0.5f * a);
  const float poly =
      -1.26551223f +
      t * (1.00002368f +
           t * (0.37409196f +
                t * (0.09678418f +
                     t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
  const float xx = x * x;
  const float hi = 0.5f * xx, lo = 0.5f * std::fma(x, x, -xx);
  const float r = t * fastmath::exp_sum_f(-hi, poly - lo);
  return std::isgreater(x, 0.f) ? 2.f - r : r;  // z < 0: erfc(z) = 2 - erfc(-z)
}

}  // namespace

KILN_SIMD_CLONES void gelu_erf(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * erfc_of_minus_x_over_sqrt2(x[i]);
}

KILN_SIMD_CLONES void gelu_tanh(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float u = 0.79788456080286535588f * (v + 0.044715f * v * v * v);
    y[i] = v / (1.f + fastmath::exp_f(-2.f * u));
  }
}

}  // namespace kiln
