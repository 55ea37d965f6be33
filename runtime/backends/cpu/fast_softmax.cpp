#include "runtime/backends/cpu/fast_softmax.h"

#include <cmath>
#include <limits>

#include "runtime/backends/cpu/fast_loops.h"
#include "runtime/backends/cpu/fast_math.h"

namespace kiln {

KILN_SIMD_CLONES void softmax_row(float* row, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  int nan = 0;
#pragma omp simd reduction(max : mx) reduction(| : nan)
  for (int64_t j = 0; j < n; ++j) {
    nan |= row[j] != row[j];
    mx = row[j] > mx ? row[j] : mx;
  }
  if (nan || mx == -std::numeric_limits<float>::infinity() || mx == std::numeric_limits<float>::infinity()) {
    // The rare rows (NaN, all -inf, +inf) the exact formula handles: NaN where ONNX gives NaN.
    float sum = 0.f;
    for (int64_t j = 0; j < n; ++j) sum += row[j] = std::exp(row[j] - mx);
    for (int64_t j = 0; j < n; ++j) row[j] /= sum;
    return;
  }
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    const float e = fastmath::exp_f(row[j] - mx);
    row[j] = e;
    sum += e;
  }
  const float inv = 1.f / sum;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
}

}  // namespace kiln
