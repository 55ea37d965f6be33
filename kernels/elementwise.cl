// Helpers for the generated Elementwise kernels (runtime/backends/opencl/elementwise.cpp
// puts this file before a generated kernel that uses any of them). Expressions from
// runtime/ops/elementwise_ops.def use these.

// numpy.clip: NaN stays NaN, lo > hi yields hi.
#define EW_CLAMP(a, lo, hi) ((((a) < (lo) ? (lo) : (a)) > (hi)) ? (hi) : ((a) < (lo) ? (lo) : (a)))
// CastSat (kiln's fp32->fp16 boundary Casts): finite values clamped to +-m before the
// conversion rounds them; NaN and +-inf stay.
#define EW_SATURATE(a, m) (isinf(a) ? (a) : EW_CLAMP(a, -(m), (m)))
// Integer division truncating like C; x/0 gives 0 and MIN/-1 wraps instead of trapping (PoCL
// runs kernels on the host CPU, where both raise SIGFPE).
#define EW_IDIV(a, b) \
  ((b) == (T)0 ? (T)0 : (((T)-1 < (T)0) && (b) == (T)-1) ? (T)0 - (a) : (a) / (b))

// Integer remainders (ONNX Mod): fmod=1 takes the dividend's sign (C %), fmod=0 the divisor's
// (Python %); x % 0 gives 0 and x % -1 gives 0 without trapping (MIN % -1 raises SIGFPE too).
#define EW_IFMOD(a, b) (((b) == (T)0 || (((T)-1 < (T)0) && (b) == (T)-1)) ? (T)0 : (a) % (b))
#define EW_IPYMOD(a, b) \
  ((EW_IFMOD(a, b) != (T)0 && ((EW_IFMOD(a, b) < (T)0) != ((b) < (T)0))) ? EW_IFMOD(a, b) + (b) : EW_IFMOD(a, b))
#define EW_FPYMOD(a, b) \
  ((fmod(a, b) != (T)0 && ((fmod(a, b) < (T)0) != ((b) < (T)0))) ? fmod(a, b) + (b) : fmod(a, b))

// Exact integer power by squaring; negative exponents give 0 except for bases 1 and -1.
long ew_ipow(long a, long b) {
  if (b < 0) return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;
  ulong r = 1, x = (ulong)a;
  for (; b; b >>= 1, x *= x)
    if (b & 1) r *= x;
  return (long)r;
}

// float16 values live in float registers; results are rounded back to half after each op.
float ew_round_half(float x) {
  ushort h;
  vstore_half_rte(x, 0, (__private half*)&h);
  return vload_half(0, (const __private half*)&h);
}

float ew_bf16_to_float(ushort h) { return as_float((uint)h << 16); }
ushort ew_float_to_bf16(float f) {
  uint u = as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40);
  return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float ew_round_bf16(float x) { return ew_bf16_to_float(ew_float_to_bf16(x)); }
