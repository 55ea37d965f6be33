#include "runtime/backends/cpu/fast_softmax.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace kiln {
namespace {

// exp(x) for x <= 0 (softmax's shifted scores): x = k ln2 + r, |r| <= ln2 / 2, a degree-7 Taylor
// polynomial in r (error < 2e-9, far below float's half ulp), then 2^k through the exponent
// bits. Branch-free so the loop vectorizes. Below -87 (where exp is under float's smallest
// normal) the result is 0, so masked scores (-inf, -1e4) weigh exactly nothing.
inline float exp_nonpositive(float x_in) {
  const float x = std::isless(x_in, -87.f) ? -87.f : x_in;
  const float shifted = x * 1.44269504088896341f + 12582912.f;  // 1.5 * 2^23: round to integer
  const float k = shifted - 12582912.f;
  int32_t kbits;
  std::memcpy(&kbits, &shifted, sizeof kbits);
  const float r = (x - k * 0.693145751953125f) - k * 1.428606765330187045e-06f;
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  // The low bits of `shifted` hold k (two's complement within the shifter's mantissa).
  const int32_t bits = static_cast<int32_t>((static_cast<uint32_t>(kbits) + 127u) << 23);
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return std::isless(x_in, -87.f) ? 0.f : p * scale;
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default"))) void softmax_row(float* row, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (int64_t j = 0; j < n; ++j) {
    nan |= std::isnan(row[j]);
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
    const float e = exp_nonpositive(row[j] - mx);
    row[j] = e;
    sum += e;
  }
  const float inv = 1.f / sum;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
}

}  // namespace kiln
