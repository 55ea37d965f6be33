// The output stage of the FP8 linear ops (Fp8Conv, Fp8MatMul), shared by kernels/fp8_linear.cl
// and the tensor-core kernels/mma_gemm.cl: float accumulator `acc` of output element ci, at
// global row `row` and column n:  y = cast((acc * (sa[row] * sb[n]) + bias) / sy), with the
// fused residual/activation under EPI. Options (see fp8_linear.cl): YK, BIAS_ROW, EPI, RK.
// Needs kernels/float8.cl (and kernels/linear_activation.cl with EPI) prepended.
#pragma OPENCL FP_CONTRACT OFF

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
  float sy, inv_sy, res_scale;
} F8EpiConst;

inline F8EpiConst fp8_epi_const(F8EPI_PARAMS) {
  F8EpiConst c;
  c.sy = sy[0];
  c.inv_sy = 1.0f / c.sy;  // fp8_div's
#if EPI && (RK == 1 || RK == 2)
  c.res_scale = res_scale[0];
#else
  c.res_scale = 1.0f;
#endif
  return c;
}
#define F8EPI_PREP const F8EpiConst f8epi_c = fp8_epi_const(F8EPI_ARGS);

// v / s as a float8 output encodes it: v * (1 / s) is within 2 float ulps of the correctly
// rounded quotient, so it encodes alike unless it lies within 8 ulps of a float8 rounding
// midpoint (or outside the normal range, where the midpoints are elsewhere); there, and for
// NaN or Inf, the quotient itself. The same bits as dividing every element, without the
// correctly rounded division (a subroutine on NVIDIA) per element: INT8's rint_div likewise.
#if YK == 1 || YK == 2
#if YK == 1
#define F8_DROPPED_BITS 20  // of float's 23 mantissa bits, e4m3 keeps 3
#define F8_MIN_NORMAL 0.015625f
#define F8_FAST_BELOW 256.0f
#else
#define F8_DROPPED_BITS 21  // e5m2 keeps 2
#define F8_MIN_NORMAL 6.103515625e-05f
#define F8_FAST_BELOW 32768.0f
#endif
inline float fp8_div(float v, float s, float inv_s) {
  const float x = v * inv_s, a = fabs(x);
  const int from_midpoint = (int)(as_uint(a) & ((1u << F8_DROPPED_BITS) - 1u)) - (1 << (F8_DROPPED_BITS - 1));
  if (a >= F8_MIN_NORMAL && a < F8_FAST_BELOW && abs(from_midpoint) > 8) return x;
  return v / s;
}
#define F8_DIV(v, c) fp8_div((v), (c).sy, (c).inv_sy)
#else
#define F8_DIV(v, c) ((v) / (c).sy)  // a float or half output keeps the quotient itself
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

// The encoded value output element ci gets (it reads the residual at ci, or in rtile); c:
// F8EPI_PREP's.
inline y_t fp8_value(float acc, int row, int n, int ci, F8EpiConst c FP8_TILE_PARAM, F8EPI_PARAMS) {
  const float mult = sa[sa_vec ? row : 0] * sb[sb_vec ? n : 0];
#if BIAS_ROW
  const float add = KILN_FIXED(KILN_EPI_BIAS, has_bias) ? bias[row] : 0.f;
#else
  const float add = KILN_FIXED(KILN_EPI_BIAS, has_bias) ? bias[n] : 0.f;
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
  return ENCODE_Y(v, saturate);
}

#if !(EPI && MMA_RES_TILE)
inline void fp8_store(float acc, int row, int n, int ci, F8EpiConst c, F8EPI_PARAMS) {
  Y_STORE(ci, fp8_value(acc, row, n, ci, c, F8EPI_ARGS));
}
#endif

// Binding for kernels/mma_gemm.cl.
#define MMA_EPI_PARAMS , F8EPI_PARAMS
#define MMA_EPI_OUT_T y_t
#define MMA_EPI_PREP(b) F8EPI_PREP
#if EPI && MMA_RES_TILE
#define MMA_EPI_RES_PTR res
#define MMA_EPI_VALUE(v, b, row, m, n, ci) \
  fp8_value(v, row, n, ci, f8epi_c, (__local const uchar*)MMA_RES_AT(m, n), F8EPI_ARGS)
#else
#define MMA_EPI_VALUE(v, b, row, m, n, ci) fp8_value(v, row, n, ci, f8epi_c, F8EPI_ARGS)
#endif
#define MMA_EPI_WRITE(ci, y) Y_STORE(ci, y)
