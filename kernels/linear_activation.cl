// The fused activations of the linear ops (Conv, ConvTranspose, Gemm, MatMul), by the codes of
// linear::Activation in runtime/ops/linear_epilogue.h. Prepended to kernels/conv.cl
// and kernels/gemm.cl by linear_kernel_source() so both use this one copy.
// NaN propagates (comparisons, not fmin/fmax, which would return the bound): as ONNX Runtime
// and the unfused Elementwise ops, see apply_activation in runtime/ops/linear_epilogue.h.
inline float kiln_clamp(float x, float lo, float hi) {
  const float t = x < lo ? lo : x;
  return t > hi ? hi : t;
}

// A launch may fix the output stage's choices at build time: -D KILN_ACT=code (the activation),
// KILN_EPI_BIAS=0/1 (bias or not), KILN_EPI_RES=0/1/2 (residual mode); -1 or absent: the kernel
// argument decides at run time. The tensor-core kernel fixes them: its unrolled epilogue repeats
// the output stage for each of a work-item's outputs, and with every activation behind a run-time
// switch an FP16 1x1 convolution's program was 298 KB of sm_90 code (103 KB with the activation
// fixed, 50 KB with bias and residual fixed too), more than the SM's instruction cache.
#ifndef KILN_ACT
#define KILN_ACT -1
#endif
#ifndef KILN_EPI_BIAS
#define KILN_EPI_BIAS -1
#endif
#ifndef KILN_EPI_RES
#define KILN_EPI_RES -1
#endif
#define KILN_FIXED(fixed, runtime) ((fixed) >= 0 ? (fixed) : (runtime))

inline float kiln_act_of(int act, float x, float a, float b) {
  switch (act) {
    case 1: return x < 0.0f ? 0.0f : x;
    case 2: return x >= 0.0f ? x : a * x;
    case 3: return kiln_clamp(x, a, b);
    case 4: return kiln_clamp(a * x + b, 0.0f, 1.0f);
    case 5: return x * kiln_clamp(x / 6.0f + 0.5f, 0.0f, 1.0f);
    case 6: return 1.0f / (1.0f + exp(-x));
    case 7: return tanh(x);
    case 8: return x >= 0.0f ? x : a * (exp(x) - 1.0f);
    case 9: return x > 0.0f ? b * x : b * (a * exp(x) - a);
    case 10: return x > 20.0f ? x : log1p(exp(x));
    case 11: return 0.5f * x * (1.0f + erf(x * 0.70710678118654752440f));
    case 12: return 0.5f * x * (1.0f + tanh(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
    default: return x;
  }
}
#define kiln_act(act, x, a, b) kiln_act_of(KILN_FIXED(KILN_ACT, (act)), x, a, b)

