// FP8 (E4M3FN, E5M2) conversions in OpenCL C, the same rules as runtime/core/float8.cpp (the
// ONNX float8 spec: round to nearest even; saturate to +-max, or NaN / Inf when not
// saturating). Not a kernel file on its own: prepended to the sources that need it. With
// -D KILN_PTX_FP8=1 (NVIDIA, compute capability 8.9+) decoding and the saturating encodings are one
// instruction each.

// |x| bits (finite, non-zero) rounded to a code with `mbits` mantissa bits and exponent bias
// `bias`; codes past the format's max mean overflow (handled by the callers).
uint f8_round_to_code(uint abs_bits, int mbits, int bias) {
  int e = (int)(abs_bits >> 23) - 127;
  if (e == -127) return 0u;
  uint m = (abs_bits & 0x7FFFFFu) | 0x800000u;
  int emin = 1 - bias;
  int drop = 23 - mbits + (e < emin ? emin - e : 0);
  if (drop > 24) return 0u;
  uint q = m >> drop;
  uint rem = m & ((1u << drop) - 1u), halfway = 1u << (drop - 1);
  if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
  if (e < emin) return q;
  int be = e + bias;
  if (q >> (mbits + 1)) {
    q >>= 1;
    ++be;
  }
  return ((uint)be << mbits) | (q & ((1u << mbits) - 1u));
}

#if KILN_PTX_FP8
// The saturating conversions as one instruction (cvt.rn.satfinite, sm_89+: round to nearest even,
// +-Inf and overflow to +-max, as the spec's saturate = 1), NaN selected after it (the spec's NaN
// keeps the sign; the instruction's does not). Why a select, not a branch: with the saturation
// fixed at build time (KILN_FP8_SAT) no branch is left in the output stage, whose branches per
// element kept FP8's residual layers at half INT8's speed in the same tiles.
#define F8_CVT(fmt)                                                                                  \
  inline uchar ptx_cvt_##fmt(float x) {                                                              \
    uint r;                                                                                          \
    asm("{ .reg .b16 t; cvt.rn.satfinite." #fmt "x2.f32 t, %1, %1; cvt.u32.u16 %0, t; }" : "=r"(r) : "f"(x)); \
    return (uchar)(r & 0xFFu);                                                                       \
  }
F8_CVT(e4m3)
F8_CVT(e5m2)
#define F8_FAST(fmt, x, saturate)                                       \
  if (saturate) {                                                       \
    const uchar r_ = ptx_cvt_##fmt(x);                                  \
    return isnan(x) ? (uchar)(0x7Fu | ((as_uint(x) >> 24) & 0x80u)) : r_; \
  }
// Decoding in one instruction (cvt.rn.f16x2.e4m3x2 / e5m2x2, sm_89+: every code is a half), then
// the half widened; NaN codes selected to the C code's quiet NaN (the CPU reference's bits).
#define F8_DECODE(fmt, is_nan)                                                                             \
  inline float ptx_decode_##fmt(uchar c) {                                                                 \
    float f;                                                                                               \
    asm("{ .reg .b16 t, lo, hi; .reg .b32 h2; cvt.u16.u32 t, %1; cvt.rn.f16x2." #fmt "x2 h2, t;"            \
        " mov.b32 {lo, hi}, h2; cvt.f32.f16 %0, lo; }" : "=f"(f) : "r"((uint)c * 0x101u));                 \
    return (is_nan) ? as_float(0x7FC00000u) : f;                                                           \
  }
F8_DECODE(e4m3, (c & 0x7Fu) == 0x7Fu)
F8_DECODE(e5m2, (c & 0x7Fu) > 0x7Cu)
#else
#define F8_FAST(fmt, x, saturate)
#endif

uchar float_to_f8e4m3fn(float x, int saturate) {
  F8_FAST(e4m3, x, saturate)
  uint b = as_uint(x);
  uchar sign = (uchar)((b >> 24) & 0x80u);
  uint a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return (uchar)(0x7F | sign);
  if (a == 0x7F800000u) return (uchar)(sign | (saturate ? 0x7E : 0x7F));
  if (a == 0u) return sign;
  uint code = a >= 0x47800000u ? 0x100u : f8_round_to_code(a, 3, 7);
  if (code > 0x7Eu) return (uchar)(sign | (saturate ? 0x7E : 0x7F));
  return (uchar)(sign | code);
}

uchar float_to_f8e5m2(float x, int saturate) {
  F8_FAST(e5m2, x, saturate)
  uint b = as_uint(x);
  uchar sign = (uchar)((b >> 24) & 0x80u);
  uint a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return (uchar)(0x7F | sign);
  if (a == 0x7F800000u) return (uchar)(sign | (saturate ? 0x7B : 0x7C));
  if (a == 0u) return sign;
  uint code = a >= 0x48000000u ? 0x100u : f8_round_to_code(a, 2, 15);
  if (code > 0x7Bu) return (uchar)(sign | (saturate ? 0x7B : 0x7C));
  return (uchar)(sign | code);
}

// Decoding builds the float32 bits directly (subnormals through an exact multiply).
float f8e4m3fn_to_float(uchar c) {
#if KILN_PTX_FP8
  return ptx_decode_e4m3(c);
#else
  uint mag = c & 0x7Fu;
  float v;
  if (mag == 0x7Fu) return as_float(0x7FC00000u);
  uint ef = mag >> 3, mf = mag & 7u;
  if (ef == 0u) v = (float)mf * 0.001953125f;  // 2^-9
  else v = as_float(((ef + 120u) << 23) | (mf << 20));
  return (c & 0x80u) ? -v : v;
#endif
}

float f8e5m2_to_float(uchar c) {
#if KILN_PTX_FP8
  return ptx_decode_e5m2(c);
#else
  uint mag = c & 0x7Fu;
  float v;
  if (mag > 0x7Cu) return as_float(0x7FC00000u);
  uint ef = mag >> 2, mf = mag & 3u;
  if (mag == 0x7Cu) v = as_float(0x7F800000u);
  else if (ef == 0u) v = (float)mf * 0.0000152587890625f;  // 2^-16
  else v = as_float(((ef + 112u) << 23) | (mf << 21));
  return (c & 0x80u) ? -v : v;
#endif
}
