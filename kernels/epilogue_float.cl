// The output stage of the float linear ops (Conv, ConvTranspose, Gemm, MatMul in FP32 or FP16
// storage): the fused epilogue of runtime/ops/linear_epilogue.h, shared by kernels/gemm.cl
// and the tensor-core kernels/mma_gemm.cl. Needs kernels/float_storage.cl and
// kernels/linear_activation.cl (kiln_act) prepended.

// Epilogue arguments, in this order, for every kernel that uses it:
//   beta, bias, bias_off, bias_rs, bias_cs, bias_bstride, bias_bmod,
//   res, res_off, res_mode, act, act_a, act_b
// has_bias = 0 / res_mode = 0 disable the bias / residual (their buffers are then dummies).
#define KILN_EPILOGUE_PARAMS                                                                 \
  float beta, int has_bias, __global const store_t* bias, int bias_off, int bias_rs, int bias_cs, \
      int bias_bstride, int bias_bmod, __global const store_t* res, int res_off, int res_mode,   \
      int act, float act_a, float act_b

inline float kiln_epilogue(float v, int batch, int i, int j, long cidx, KILN_EPILOGUE_PARAMS) {
  if (KILN_FIXED(KILN_EPI_BIAS, has_bias))
    v += beta * LOADF(bias, bias_off + (batch % bias_bmod) * bias_bstride + i * bias_rs + j * bias_cs);
  if (KILN_FIXED(KILN_EPI_RES, res_mode) == 1) v += LOADF(res, res_off + cidx);
  v = kiln_act(act, v, act_a, act_b);
  if (KILN_FIXED(KILN_EPI_RES, res_mode) == 2) v += LOADF(res, res_off + cidx);
  return v;
}

// Binding for kernels/mma_gemm.cl: C[c_off + ci] = epilogue(alpha * acc); the bias row is the
// row within batch item b (the group of a convolution).
#define MMA_EPI_PARAMS , __global store_t* C, int c_off, float alpha, KILN_EPILOGUE_PARAMS
#define MMA_EPI_STORE(v, b, row, m, n, ci)                                                             \
  STOREF(C, c_off + (ci), kiln_epilogue(alpha * (v), b, m, n, ci, beta, has_bias, bias, bias_off, bias_rs, \
                                        bias_cs, bias_bstride, bias_bmod, res, res_off, res_mode, act, act_a, act_b))
