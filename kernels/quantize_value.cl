// One value quantized as QuantizeLinear does it (the CPU reference's arithmetic): shared by
// kernels/quantize.cl and the kernels that write a quantized copy of their output
// (runtime/ops/quantized_output.h). Not a kernel file on its own: prepended after float8.cl and
// rint_div.cl, built with -D QT=<the quantized element type> -D QKIND=<0 int, 1 e4m3fn, 2 e5m2>
// (-D QLO/QHI: the int range) and -cl-fp32-correctly-rounded-divide-sqrt.
#pragma OPENCL FP_CONTRACT OFF

#ifndef QT
#define QT uchar
#endif
#ifndef QKIND
#define QKIND 0
#endif

// y = saturate(round(x / scale) + zero point) of one element (the float8 kinds have no zero point);
// inv_scale: 1 / scale for rint_div (kernels/rint_div.cl), or 0 to divide.
QT quantize_one(float x, float scale, float inv_scale, float z, int saturate) {
#if QKIND == 1
  return float_to_f8e4m3fn(x / scale, saturate);
#elif QKIND == 2
  return float_to_f8e5m2(x / scale, saturate);
#else
  const float r = inv_scale != 0.0f ? rint_div(x, scale, inv_scale) : rint(x / scale);
  const float q = fmin(fmax(r, (float)QLO - z), (float)QHI - z);
  return (QT)((int)q + (int)z);
#endif
}

#if QKIND != 0 || QHI - QLO == 255
#define QT_PASTE(t, n) t##n
#define QT_VEC(t, n) QT_PASTE(t, n)
#define QUANTIZE_LANE(e) quantize_one(e, s, inv, z, saturate)

// Eight values quantized to an 8-bit type, as the bytes of one 8-byte store.
inline uint2 quantize8(float8 v, float s, float inv, float z, int saturate) {
  const QT_VEC(QT, 8) q = (QT_VEC(QT, 8))(QUANTIZE_LANE(v.s0), QUANTIZE_LANE(v.s1), QUANTIZE_LANE(v.s2),
                                          QUANTIZE_LANE(v.s3), QUANTIZE_LANE(v.s4), QUANTIZE_LANE(v.s5),
                                          QUANTIZE_LANE(v.s6), QUANTIZE_LANE(v.s7));
  return as_uint2(q);
}
#undef QUANTIZE_LANE
#endif
