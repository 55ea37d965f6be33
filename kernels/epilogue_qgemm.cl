// The output stage of the integer GEMM family (MatMulInteger, QLinearMatMul, ConvInteger,
// QLinearConv), shared by kernels/qgemm.cl and the tensor-core kernels/mma_gemm.cl: int32
// accumulator `acc` of output element ci, at global row `row` (per-row scales and bias) and
// column n (per-column scales, and the bias with bias_cols). Options (see qgemm.cl):
//   REQUANT=0: store acc as int32.  REQUANT=1, EPI=0: q = clamp(rint((acc + bias) * (sa sb / sy)) + yzp)
//   EPI=1: kiln's fused epilogue (runtime/backends/quantize_geometry.h): r = (acc + bias) sa sb,
//   residual and activation in float, then requantized, or stored as float (OUT_FLOAT).
//   OUT_HALF=1 (with OUT_FLOAT): the float result stored as half (vstore_half: no cl_khr_fp16
//   needed), for FP16 readers (--fallback-precision fp16); RES_HALF=1: a half residual.
#pragma OPENCL FP_CONTRACT OFF

// -D BIAS_N=1: the bias is per column (a channels-last convolution on the tensor cores, whose
// columns are the output channels).
#ifndef BIAS_N
#define BIAS_N 0
#endif

#if OUT_HALF
#define QEPI_STORE_T half
#define QEPI_STORE(ci, v) vstore_half((v), (ci), Cout)
#else
#define QEPI_STORE_T OUT_T
#define QEPI_STORE(ci, v) (Cout[ci] = (v))
#endif
// MMA_RES_TILE (the tensor-core kernel, kernels/mma_gemm.cl): the work-group's residual tile was
// copied into shared memory at once, and the value function reads its element there (rtile).
#if MMA_RES_TILE && RES_HALF
#define QEPI_RES(ci) vload_half(0, rtile)
#elif MMA_RES_TILE
#define QEPI_RES(ci) ((float)*rtile)
#elif RES_HALF
#define QEPI_RES(ci) vload_half((ci), res)
#else
#define QEPI_RES(ci) ((float)res[ci])
#endif
#if MMA_RES_TILE
#define QEPI_TILE_PARAM , __local const RES_T* rtile
#else
#define QEPI_TILE_PARAM
#endif

#if EPI
#define QEPI_EXTRA_PARAMS , int bias_cols, int act, float act_a, float act_b, int res_mode, __global const RES_T* res, \
    __global const float* res_scale_p, __global const RES_T* res_zp_p
#define QEPI_EXTRA_ARGS , bias_cols, act, act_a, act_b, res_mode, res, res_scale_p, res_zp_p
#else
#define QEPI_EXTRA_PARAMS
#define QEPI_EXTRA_ARGS
#endif
// The yzp buffer has the quantized type even where the output is float (OUT_FLOAT).
#define QEPI_PARAMS __global QEPI_STORE_T* Cout, __global const float* sa, int sa_vec, __global const float* sb, int sb_vec, \
    __global const float* sy, __global const char* yzp_raw, __global const int* bias, int has_bias QEPI_EXTRA_PARAMS
#define QEPI_ARGS Cout, sa, sa_vec, sb, sb_vec, sy, yzp_raw, bias, has_bias QEPI_EXTRA_ARGS

// The output stage's scalars, read once per work-group (MMA_EPI_PREP) or thread (QEPI_PREP) rather
// than per element: the compiler may not keep them across the output stores (the output could
// alias any input), and reloading five of them per element made INT8's residual layers run at a
// quarter of FP16's bytes per second.
typedef struct {
  float sa0, sy, yzp, res_scale, res_zp;
  KilnDivisor dy;  // sy's, for kiln_div (kernels/rint_div.cl)
} QEpiConst;

inline QEpiConst qepi_const(QEPI_PARAMS) {
  QEpiConst c;
  c.sa0 = c.sy = c.yzp = c.res_zp = 0.0f;
  c.res_scale = 1.0f;
  c.dy = kiln_divisor(1.0f);
#if REQUANT
  c.sa0 = sa[0];
  c.sy = sy[0];
  c.dy = kiln_divisor(c.sy);
  c.yzp = (float)((__global const YZP_T*)yzp_raw)[0];
#if EPI && RES_Q
  c.res_scale = res_scale_p[0];
  c.res_zp = (float)res_zp_p[0];
#endif
#endif
  return c;
}
#define QEPI_PREP const QEpiConst qepi_c = qepi_const(QEPI_ARGS);

// Whether there is a bias (fixed at build time with the fused stage, kernels/linear_activation.cl),
// and whether it is indexed by the output's column (else by its row).
#if EPI
#define QEPI_HAS_BIAS KILN_FIXED(KILN_EPI_BIAS, has_bias)
#define QEPI_BIAS_BY_COL (BIAS_N || bias_cols)
#else
#define QEPI_HAS_BIAS has_bias
#define QEPI_BIAS_BY_COL BIAS_N
#endif

// The output stage's values of column n (its scale, its bias where the bias goes by column, and
// the whole multiplier of the unfused stage where the row scale is per tensor), read once per
// column a lane finishes (MMA_EPI_COLS) rather than per element: three loads and, unfused, a
// division per element before.
typedef struct {
  float sb, mult;
  int bias;
} QEpiCol;

inline QEpiCol qepi_col(int n, QEpiConst c, QEPI_PARAMS) {
  QEpiCol k;
  k.sb = k.mult = 0.0f;
  k.bias = 0;
#if REQUANT
  k.sb = sb[sb_vec ? n : 0];
  k.bias = QEPI_HAS_BIAS && QEPI_BIAS_BY_COL ? bias[n] : 0;
  k.mult = (c.sa0 * k.sb) / c.sy;
#endif
  return k;
}

// The value output element ci gets (it reads the residual at ci); c: QEPI_PREP's, k: its column's.
inline OUT_T qgemm_value(int acc, int row, int ci, QEpiConst c, QEpiCol k QEPI_TILE_PARAM, QEPI_PARAMS) {
#if REQUANT
  const float sa_row = sa[sa_vec ? row : 0];  // one load, no branch: a branch here doubled the stage
  const int bias_v = QEPI_HAS_BIAS ? (QEPI_BIAS_BY_COL ? k.bias : bias[row]) : 0;
#if EPI
  float r = (float)(acc + bias_v) * (sa_row * k.sb);
  if (KILN_FIXED(KILN_EPI_RES, res_mode) == 1) r += (QEPI_RES(ci) - c.res_zp) * c.res_scale;
  r = kiln_act(act, r, act_a, act_b);
  if (KILN_FIXED(KILN_EPI_RES, res_mode) == 2) r += (QEPI_RES(ci) - c.res_zp) * c.res_scale;
#if OUT_FLOAT
  return r;
#else
  return (OUT_T)fmin(fmax(rint(kiln_div(r, c.dy)) + c.yzp, (float)QLO), (float)QHI);
#endif
#else
  const float mult = sa_vec ? (sa_row * k.sb) / c.sy : k.mult;
  return (OUT_T)fmin(fmax(rint((float)(acc + bias_v) * mult) + c.yzp, (float)QLO), (float)QHI);
#endif
#else
  return acc;
#endif
}

#if !MMA_RES_TILE
inline void qgemm_store(int acc, int row, int n, int ci, QEpiConst c, QEPI_PARAMS) {
  QEPI_STORE(ci, qgemm_value(acc, row, ci, c, qepi_col(n, c, QEPI_ARGS), QEPI_ARGS));
}
#endif

// Binding for kernels/mma_gemm.cl.
#define MMA_EPI_PARAMS , QEPI_PARAMS
#define MMA_EPI_OUT_T OUT_T
#define MMA_EPI_PREP(b) QEPI_PREP
#define MMA_EPI_COLS(n) const QEpiCol qepi_k = qepi_col(n, qepi_c, QEPI_ARGS);
#if MMA_RES_TILE
#define MMA_EPI_RES_PTR res
#define MMA_EPI_VALUE(v, b, row, m, n, ci) qgemm_value(v, row, ci, qepi_c, qepi_k, (__local const RES_T*)MMA_RES_AT(m, n), QEPI_ARGS)
#else
#define MMA_EPI_VALUE(v, b, row, m, n, ci) qgemm_value(v, row, ci, qepi_c, qepi_k, QEPI_ARGS)
#endif
#define MMA_EPI_WRITE(ci, y) QEPI_STORE(ci, y)
