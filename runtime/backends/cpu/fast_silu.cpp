#include "runtime/backends/cpu/fast_silu.h"

#include <cmath>

#include "runtime/backends/cpu/fast_loops.h"
#include "runtime/backends/cpu/fast_math.h"
#include "runtime/ops/gelu_reference.h"

namespace kiln {

KILN_SIMD_CLONES void silu(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.f + fastmath::exp_f(-x[i]));
}

bool silu_form_of(const float* ys) {
  for (int i = 0; i < kGeluProbePoints; ++i) {
    const double v = gelu_probe_point(i);
    const double s = v / (1.0 + std::exp(-v));
    if (!(std::fabs(ys[i] - s) <= 1e-6 + 1e-5 * std::fabs(s))) return false;
  }
  return true;
}

}  // namespace kiln
