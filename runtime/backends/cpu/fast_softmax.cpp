#include "runtime/backends/cpu/fast_softmax.h"

#include <algorithm>
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

namespace {

// One column by the exact formula (NaN, infinite maxima): the sum first, so y may alias x.
void softmax_column_exact(const float* x, float* y, int64_t n, int64_t stride, float mx) {
  float sum = 0.f;
  for (int64_t k = 0; k < n; ++k) sum += std::exp(x[k * stride] - mx);
  for (int64_t k = 0; k < n; ++k) y[k * stride] = std::exp(x[k * stride] - mx) / sum;
}

}  // namespace

KILN_SIMD_CLONES void softmax_columns(const float* x, float* y, int64_t n, int64_t stride, int64_t c0,
                                      int64_t width) {
  constexpr int64_t kBlock = 256;  // columns at a time: their maxima and sums stay in L1
  float mx[kBlock], sum[kBlock];
  for (int64_t b = c0; b < c0 + width; b += kBlock) {
    const int64_t w = std::min(kBlock, c0 + width - b);
    std::fill_n(mx, w, -std::numeric_limits<float>::infinity());
    int nan = 0;
    for (int64_t k = 0; k < n; ++k) {
      const float* r = x + k * stride + b;
#pragma omp simd reduction(| : nan)
      for (int64_t j = 0; j < w; ++j) {
        nan |= r[j] != r[j];
        mx[j] = r[j] > mx[j] ? r[j] : mx[j];
      }
    }
    bool special = nan != 0;
    for (int64_t j = 0; j < w; ++j) special |= std::isinf(mx[j]);
    if (special) {
      // Rare: every column of the block by the exact formula (a NaN column's max is not known).
      for (int64_t j = 0; j < w; ++j) {
        float m = -std::numeric_limits<float>::infinity();
        bool col_nan = false;
        for (int64_t k = 0; k < n; ++k) {
          const float v = x[k * stride + b + j];
          col_nan |= v != v;
          m = v > m ? v : m;
        }
        softmax_column_exact(x + b + j, y + b + j, n, stride, col_nan ? std::numeric_limits<float>::quiet_NaN() : m);
      }
      continue;
    }
    std::fill_n(sum, w, 0.f);
    for (int64_t k = 0; k < n; ++k) {
      const float* r = x + k * stride + b;
      float* o = y + k * stride + b;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        const float e = fastmath::exp_f(r[j] - mx[j]);
        o[j] = e;
        sum[j] += e;
      }
    }
    for (int64_t j = 0; j < w; ++j) sum[j] = 1.f / sum[j];
    for (int64_t k = 0; k < n; ++k) {
      float* o = y + k * stride + b;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) o[j] *= sum[j];
    }
  }
}

}  // namespace kiln
