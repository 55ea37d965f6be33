// Quotients as the CPU reference's correctly rounded float32 division gives them, without a
// division per element. Built with -cl-fp32-correctly-rounded-divide-sqrt (the reference's exact
// division where one remains).
#pragma OPENCL FP_CONTRACT OFF

// A divisor s as kiln_div takes it: s = 2^k * s1 with s1 in [1, 2) (k clamped to [-125, 125]),
// 1 / s1 and 2^-k. Computed once per work-group or thread (one division).
typedef struct {
  float s1, inv_s1, pow_k;
} KilnDivisor;

inline KilnDivisor kiln_divisor(float s) {
  const int k = clamp((int)((as_uint(s) >> 23) & 0xFFu) - 127, -125, 125);
  KilnDivisor d;
  d.pow_k = as_float((uint)(127 - k) << 23);
  d.s1 = s * d.pow_k;
  d.inv_s1 = 1.0f / d.s1;
  return d;
}

// v / s, correctly rounded wherever |v / s| lies in [2^-100, 2^127); beneath, within a float ulp
// (every caller rounds such values to zero), above, possibly Inf (every 8-bit or half caller
// saturates or overflows alike). The quotient of v' = v 2^-k by s1 in [1, 2) is the same real
// number; x = v' (1 / s1) is within an ulp of it, the remainder v' - x s1 is exact in one fma, and
// x + remainder (1 / s1) rounds to the correctly rounded quotient (Markstein's theorem; checked
// against division on 6e8 float pairs over the whole range, ties of rint included). Overflow, Inf
// and NaN keep x. Why: branch-free, where the previous test for a rounding midpoint branched to a
// division per element, and those branches kept the 8-bit output stages' loads from overlapping.
inline float kiln_div(float v, KilnDivisor d) {
  const float a = v * d.pow_k;
  const float x = a * d.inv_s1;
  const float q = fma(fma(-x, d.s1, a), d.inv_s1, x);
  return isfinite(q) ? q : x;
}

// rint(r / s), exactly as the correctly rounded division (the CPU reference's) rounds, from
// r * inv_s (inv_s = 1 / s) wherever that cannot differ: for |r / s| < 1024 the product is within
// 2e-4 of the rounded quotient, so away from a tie (.5) by more than 1e-3 both round alike; the
// rest (ties, saturated values, NaN) divide. Kept for QuantizeLinear (kernels/quantize.cl), whose
// host passes inv_s; the GEMM output stages take kiln_div.
inline float rint_div(float r, float s, float inv_s) {
  const float x = r * inv_s;
  if (fabs(x) < 1024.0f && fabs(x - floor(x) - 0.5f) > 1e-3f) return rint(x);
  return rint(r / s);
}
