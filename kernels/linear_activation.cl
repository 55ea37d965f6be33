// The fused activations of the linear ops (Conv, ConvTranspose, Gemm, MatMul), by the codes of
// linear::Activation in runtime/backends/cpu/linear_epilogue.h. Prepended to kernels/conv.cl
// and kernels/gemm.cl by linear_kernel_source() so both use this one copy.
inline float kiln_act(int act, float x, float a, float b) {
  switch (act) {
    case 1: return fmax(x, 0.0f);
    case 2: return x >= 0.0f ? x : a * x;
    case 3: return fmin(fmax(x, a), b);
    case 4: return fmax(0.0f, fmin(1.0f, a * x + b));
    case 5: return x * fmax(0.0f, fmin(1.0f, x / 6.0f + 0.5f));
    case 6: return 1.0f / (1.0f + exp(-x));
    case 7: return tanh(x);
    case 8: return x >= 0.0f ? x : a * (exp(x) - 1.0f);
    case 9: return x > 0.0f ? b * x : b * (a * exp(x) - a);
    case 10: return x > 20.0f ? x : log1p(exp(x));
    default: return x;
  }
}

