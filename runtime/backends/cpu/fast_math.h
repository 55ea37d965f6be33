// Float exp for the cpu fast path's vectorized loops (softmax rows, GELU): branch-free, so the
// loops around it vectorize at every target_clones ISA, and within 2 ulp of libm's expf.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace kiln::fastmath {

// exp(a + b) for an exact a and a small correction b (|b| below a few units), without rounding
// a + b first: a = k ln2 + r' (ln2 split in two so k ln2 is exact, and a - k ln2_hi is exact by
// Sterbenz's lemma), r = r' + b, |r| <= ln2 / 2 + |b|, then a degree-7 Taylor polynomial in r
// (truncation < 6e-9 for |r| < 0.4, below float's half ulp) and 2^k through the exponent bits.
// Below -87 (under float's smallest normal) 0, above 88 infinity; NaN stays NaN (the clamps are
// quiet comparisons, so a NaN passes through them into the polynomial).
inline float exp_sum_f(float a, float b) {
  const float x_in = a + b;  // range and k only
  float x = std::isless(x_in, -87.f) ? -87.f : x_in;
  x = std::isgreater(x, 88.f) ? 88.f : x;
  const float shifted = x * 1.44269504088896341f + 12582912.f;  // 1.5 * 2^23: rounds to an integer
  const float k = shifted - 12582912.f;
  int32_t kbits;
  std::memcpy(&kbits, &shifted, sizeof kbits);
  // Clamped: a stands for x; otherwise a and b as given.
  const bool clamped = std::isless(x_in, -87.f) || std::isgreater(x_in, 88.f);
  const float aa = clamped ? x : a, bb = clamped ? 0.f : b;
  const float r = ((aa - k * 0.693145751953125f) - k * 1.428606765330187045e-06f) + bb;
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  // The low bits of `shifted` hold k (two's complement within the shifter's mantissa), so this
  // is (k + 127) << 23, the bits of 2^k (k is within [-126, 127] after the clamps).
  const int32_t bits = static_cast<int32_t>((static_cast<uint32_t>(kbits) + 127u) << 23);
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float y = p * scale;
  if (std::isless(x_in, -87.f)) return 0.f;
  return std::isgreater(x_in, 88.f) ? std::numeric_limits<float>::infinity() : y;
}

// exp(x), within 2 ulp of libm's expf.
inline float exp_f(float x) { return exp_sum_f(x, 0.f); }

}  // namespace kiln::fastmath
