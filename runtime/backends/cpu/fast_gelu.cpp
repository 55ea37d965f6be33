#include "runtime/backends/cpu/fast_gelu.h"

#include <cmath>
#include <cstring>

namespace kiln {
namespace {

// exp(x) for x in [-700, 700]: x = k ln2 + r, |r| <= ln2 / 2, Taylor to degree 12 (error far
// below float's), then 2^k through the exponent bits. Branch-free so the loops vectorize.
inline double exp_d(double x) {
  // Quiet comparisons (isless: no FP exception on NaN), so GCC may if-convert them to selects.
  x = std::isless(x, -700.0) ? -700.0 : x;
  x = std::isgreater(x, 700.0) ? 700.0 : x;
  // k = round(x / ln2) by the 1.5 * 2^52 shifter: its low mantissa bits then hold k.
  const double shifted = x * 1.4426950408889634074 + 6755399441055744.0;
  const double k = shifted - 6755399441055744.0;
  int64_t kbits;
  std::memcpy(&kbits, &shifted, sizeof kbits);
  const double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
  double p = 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // The low 12 bits of `shifted`'s bits are those of k; the shift drops everything above them,
  // so this is (k + 1023) << 52, the bits of 2^k.
  const int64_t bits = static_cast<int64_t>((static_cast<uint64_t>(kbits) + 1023) << 52);
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// erfc(z), Numerical Recipes' erfcc (relative error < 1.2e-7 for all z).
inline double erfc_d(double z) {
  const double a = std::fabs(z);
  const double t = 1.0 / (1.0 + 0.5 * a);
  const double poly =
      -1.26551223 +
      t * (1.00002368 +
           t * (0.37409196 +
                t * (0.09678418 +
                     t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const double r = t * exp_d(-a * a + poly);
  return std::isless(z, 0.0) ? 2.0 - r : r;
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_erf(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(0.5 * v * erfc_d(-v * 0.70710678118654752440));
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_tanh(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    const double u = 0.79788456080286535588 * (v + 0.044715 * v * v * v);
    y[i] = static_cast<float>(v / (1.0 + exp_d(-2.0 * u)));
  }
}

}  // namespace kiln
