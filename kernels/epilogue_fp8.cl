// The output stage of the FP8 linear ops (Fp8Conv, Fp8MatMul), shared by kernels/fp8_linear.cl
// and the tensor-core kernels/mma_gemm.cl: float accumulator `acc` of output element ci, at
// global row `row` and column n:  y = cast((acc * (sa[row] * sb[n]) + bias) / sy), with the
// fused residual/activation under EPI. Options (see fp8_linear.cl): YK, BIAS_ROW, EPI, RK.
// Needs kernels/float8.cl, kernels/rint_div.cl and kernels/linear_activation.cl prepended.
#pragma OPENCL FP_CONTRACT OFF

// -D KILN_FP8_SAT=0/1: the saturation fixed at build time (the tensor-core kernel's fixed options),
// so that the encoding is one instruction with no branch (kernels/float8.cl); -1: the argument's.
#ifndef KILN_FP8_SAT
#define KILN_FP8_SAT -1
#endif

#if YK == 0 || YK == 3
typedef float y_t;
#define ENCODE_Y(v, sat) (v)
#elif YK == 1
typedef uchar y_t;
#define ENCODE_Y(v, sat) float_to_f8e4m3fn(v, sat)
#else
typedef uchar y_t;
#define ENCODE_Y(v, sat) float_to_f8e5m2(v, sat)
#endif

// YK == 3 / RK == 3: float16 output / residual (vstore_half, vload_half: no cl_khr_fp16 needed).
#if YK == 3
#define Y_STORE_T half
#define Y_STORE(ci, v) vstore_half((v), (ci), Y)
#else
#define Y_STORE_T y_t
#define Y_STORE(ci, v) (Y[ci] = (v))
#endif

#if EPI && RK == 0
#define RES_T float
#define RES_LOAD(i) res[i]
#elif EPI && RK == 3
#define RES_T half
#define RES_LOAD(i) vload_half((i), res)
#elif EPI && RK == 1
#define RES_T uchar
#define RES_LOAD(i) (f8e4m3fn_to_float(res[i]) * c.res_scale)
#elif EPI
#define RES_T uchar
#define RES_LOAD(i) (f8e5m2_to_float(res[i]) * c.res_scale)
#endif

#if EPI
#define F8EPI_EXTRA_PARAMS , int act, float act_a, float act_b, int res_mode, __global const RES_T* res, \
    __global const float* res_scale
#define F8EPI_EXTRA_ARGS , act, act_a, act_b, res_mode, res, res_scale
#else
#define F8EPI_EXTRA_PARAMS
#define F8EPI_EXTRA_ARGS
#endif
#define F8EPI_PARAMS __global Y_STORE_T* Y, __global const float* sa, int sa_vec, __global const float* sb, int sb_vec, \
    __global const float* sy, __global const float* bias, int has_bias, int saturate F8EPI_EXTRA_PARAMS
#define F8EPI_ARGS Y, sa, sa_vec, sb, sb_vec, sy, bias, has_bias, saturate F8EPI_EXTRA_ARGS

// The output stage's scalars, read once per work-group or thread rather than per element (the
// compiler may not keep them across the output stores, which could alias any input).
typedef struct {
  float sy, res_scale;
  KilnDivisor dy;  // sy's, for kiln_div (kernels/rint_div.cl)
} F8EpiConst;

inline F8EpiConst fp8_epi_const(F8EPI_PARAMS) {
  F8EpiConst c;
  c.sy = sy[0];
  c.dy = kiln_divisor(c.sy);
#if EPI && (RK == 1 || RK == 2)
  c.res_scale = res_scale[0];
#else
  c.res_scale = 1.0f;
#endif
  return c;
}
#define F8EPI_PREP const F8EpiConst f8epi_c = fp8_epi_const(F8EPI_ARGS);

// v / sy as the output stores it: kiln_div's quotient, the correctly rounded one wherever a float8
// or half output can tell (no division per element: BERT's FP8 layers writing half ran at half
// INT8's speed with one); a float32 output keeps the quotient itself, Inf and all.
#if YK == 0
#define F8_DIV(v, c) ((v) / (c).sy)
#else
#define F8_DIV(v, c) kiln_div((v), (c).dy)
#endif

// MMA_RES_TILE (the tensor-core kernel, kernels/mma_gemm.cl): the work-group's residual tile was
// copied into __local at once (RK's bytes an element), and the value function reads its element
// there (rtile) instead of at ci in global memory.
#if EPI && MMA_RES_TILE
#if RK == 0
#define FP8_RESIDUAL (*(__local const float*)rtile)
#elif RK == 3
#define FP8_RESIDUAL vload_half(0, (__local const half*)rtile)
#elif RK == 1
#define FP8_RESIDUAL (f8e4m3fn_to_float(*rtile) * c.res_scale)
#else
#define FP8_RESIDUAL (f8e5m2_to_float(*rtile) * c.res_scale)
#endif
#define FP8_TILE_PARAM , __local const uchar* rtile
#elif EPI
#define FP8_RESIDUAL RES_LOAD(ci)
#define FP8_TILE_PARAM
#else
#define FP8_TILE_PARAM
#endif

// Column n's scale and, where the bias goes by column, its bias: read once per column a lane
// finishes (MMA_EPI_COLS) rather than per element.
typedef struct {
  float sb, bias;
} F8EpiCol;

inline F8EpiCol fp8_epi_col(int n, F8EPI_PARAMS) {
  F8EpiCol k;
  k.sb = sb[sb_vec ? n : 0];
#if BIAS_ROW
  k.bias = 0.f;
#else
  k.bias = KILN_FIXED(KILN_EPI_BIAS, has_bias) ? bias[n] : 0.f;
#endif
  return k;
}

// The encoded value output element ci gets (it reads the residual at ci, or in rtile); c:
// F8EPI_PREP's, k: its column's.
inline y_t fp8_value(float acc, int row, int ci, F8EpiConst c, F8EpiCol k FP8_TILE_PARAM, F8EPI_PARAMS) {
  const float mult = sa[sa_vec ? row : 0] * k.sb;  // one load, no branch
#if BIAS_ROW
  const float add = KILN_FIXED(KILN_EPI_BIAS, has_bias) ? bias[row] : 0.f;
#else
  const float add = k.bias;
#endif
#if EPI
  float v = acc * mult + add;
  if (KILN_FIXED(KILN_EPI_RES, res_mode) == 1) v += FP8_RESIDUAL;
  v = kiln_act(act, v, act_a, act_b);
  if (KILN_FIXED(KILN_EPI_RES, res_mode) == 2) v += FP8_RESIDUAL;
  v = F8_DIV(v, c);
#else
  const float v = F8_DIV(acc * mult + add, c);
#endif
  return ENCODE_Y(v, KILN_FIXED(KILN_FP8_SAT, saturate));
}

#if !(EPI && MMA_RES_TILE)
inline void fp8_store(float acc, int row, int n, int ci, F8EpiConst c, F8EPI_PARAMS) {
  Y_STORE(ci, fp8_value(acc, row, ci, c, fp8_epi_col(n, F8EPI_ARGS), F8EPI_ARGS));
}
#endif

// Binding for kernels/mma_gemm.cl.
#define MMA_EPI_PARAMS , F8EPI_PARAMS
#define MMA_EPI_OUT_T y_t
#define MMA_EPI_PREP(b) F8EPI_PREP
#define MMA_EPI_COLS(n) const F8EpiCol f8epi_k = fp8_epi_col(n, F8EPI_ARGS);
#if EPI && MMA_RES_TILE
#define MMA_EPI_RES_PTR res
#define MMA_EPI_VALUE(v, b, row, m, n, ci) \
  fp8_value(v, row, ci, f8epi_c, f8epi_k, (__local const uchar*)MMA_RES_AT(m, n), F8EPI_ARGS)
#else
#define MMA_EPI_VALUE(v, b, row, m, n, ci) fp8_value(v, row, ci, f8epi_c, f8epi_k, F8EPI_ARGS)
#endif
#define MMA_EPI_WRITE(ci, y) Y_STORE(ci, y)
