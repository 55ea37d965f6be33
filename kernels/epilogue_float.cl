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

// `bias_i`: the bias element of this output (unread without a bias); `r`: its residual (unread
// without one).
inline float kiln_epilogue_res(float v, int bias_i, float r, float beta, int has_bias, __global const store_t* bias,
                               int res_mode, int act, float act_a, float act_b) {
  if (KILN_FIXED(KILN_EPI_BIAS, has_bias)) v += beta * LOADF(bias, bias_i);
  if (KILN_FIXED(KILN_EPI_RES, res_mode) == 1) v += r;
  v = kiln_act(act, v, act_a, act_b);
  if (KILN_FIXED(KILN_EPI_RES, res_mode) == 2) v += r;
  return v;
}

// The same with the residual read at res[res_off + cidx].
inline float kiln_epilogue_at(float v, int bias_i, long cidx, KILN_EPILOGUE_PARAMS) {
  const float r = KILN_FIXED(KILN_EPI_RES, res_mode) ? LOADF(res, res_off + cidx) : 0.0f;
  return kiln_epilogue_res(v, bias_i, r, beta, has_bias, bias, res_mode, act, act_a, act_b);
}

inline float kiln_epilogue(float v, int batch, int i, int j, long cidx, KILN_EPILOGUE_PARAMS) {
  return kiln_epilogue_at(v, bias_off + (batch % bias_bmod) * bias_bstride + i * bias_rs + j * bias_cs, cidx, beta,
                          has_bias, bias, bias_off, bias_rs, bias_cs, bias_bstride, bias_bmod, res, res_off, res_mode,
                          act, act_a, act_b);
}

// Binding for kernels/mma_gemm.cl: C[c_off + ci] = epilogue(alpha * acc); the bias row is the
// row within batch item b (the group of a convolution). MMA_EPI_PREP runs once per work-group,
// before the output loops: the batch item's bias offset (a division) is the same for all of them.
#define MMA_EPI_PARAMS , __global store_t* C, int c_off, float alpha, KILN_EPILOGUE_PARAMS
#define MMA_EPI_PREP(b) const int epi_bias0 = bias_off + ((b) % bias_bmod) * bias_bstride;
#define MMA_EPI_OUT_T float
#if MMA_RES_TILE
// The work-group's residual tile is in __local (kernels/mma_gemm.cl's MMA_RES_TILE, copied from res
// laid out like C; the host keeps res_off 0 then).
#define MMA_EPI_RES_PTR res
#ifdef KILN_HALF
#define KILN_RES_TILE_AT(m, n) vload_half(0, (__local const half*)MMA_RES_AT(m, n))
#else
#define KILN_RES_TILE_AT(m, n) (*(__local const float*)MMA_RES_AT(m, n))
#endif
#define MMA_EPI_VALUE(v, b, row, m, n, ci)                                                                          \
  kiln_epilogue_res(alpha * (v), epi_bias0 + (m) * bias_rs + (n) * bias_cs, KILN_RES_TILE_AT(m, n), beta, has_bias, \
                    bias, res_mode, act, act_a, act_b)
#else
#define MMA_EPI_VALUE(v, b, row, m, n, ci)                                                                   \
  kiln_epilogue_at(alpha * (v), epi_bias0 + (m) * bias_rs + (n) * bias_cs, ci, beta, has_bias, bias, bias_off, \
                   bias_rs, bias_cs, bias_bstride, bias_bmod, res, res_off, res_mode, act, act_a, act_b)
#endif
#define MMA_EPI_WRITE(ci, y) STOREF(C, c_off + (ci), (y))
// Two adjacent outputs, c_off + ci even (the host pairs columns only then).
#define MMA_EPI_WRITE2(ci, y0, y1) STOREF2(C, c_off + (ci), (y0), (y1))
