// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear. Built with kernels/float8.cl,
// float_storage.cl, float_storage_x8.cl, rint_div.cl and quantize_value.cl prepended and
// -D QT=<the quantized element type> -D QKIND=<0 int, 1 e4m3fn, 2 e5m2> (-D QLO/QHI: the int
// range), plus -cl-fp32-correctly-rounded-divide-sqrt so x / scale rounds exactly as the CPU
// reference's float32 division. -DKILN_HALF: QuantizeLinear's x is float16 (widened exactly on load); every
// other tensor stays as declared.
#pragma OPENCL FP_CONTRACT OFF

// Scale/zero-point element of x's element idx (see runtime/backends/quantize_geometry.h).
int quant_param_index(int idx, int qmode, int C, int inner, int block, int cblocks) {
  if (qmode == 0) return 0;
  int i = idx % inner;
  int t = idx / inner;
  int c = t % C;
  if (qmode == 1) return c;
  int o = t / C;
  return (o * cblocks + c / block) * inner + i;
}

__kernel void quantize_linear(__global const store_t* x, __global const float* scale, __global const QT* zp,
                              int has_zp, __global QT* y, int n, int qmode, int C, int inner, int block,
                              int cblocks, int saturate) {
  int idx = get_global_id(0);
  if (idx >= n) return;
  int si = quant_param_index(idx, qmode, C, inner, block, cblocks);
  y[idx] = quantize_one(LOADF(x, idx), scale[si], 0.0f, has_zp ? (float)zp[si] : 0.0f, saturate);
}

// Per-tensor QuantizeLinear to 8-bit types (QT char or uchar), eight elements a work-item (one
// 16/32-byte load, one 8-byte store): one element a work-item moved ~860 GB/s on an H100, a
// third of its bandwidth. The last n % 8 elements go one by one.
#if QKIND != 0 || QHI - QLO == 255
__kernel void quantize_linear_x8(__global const store_t* x, __global const float* scale, __global const QT* zp,
                                 int has_zp, __global QT* y, int n, int saturate) {
  const int i8 = get_global_id(0);
  const float s = scale[0], inv = 1.0f / s;
  const float z = has_zp ? (float)zp[0] : 0.0f;
  if (8 * i8 + 8 <= n) {
    ((__global uint2*)y)[i8] = quantize8(load8f(x, i8), s, inv, z, saturate);
  } else {
    for (int i = 8 * i8; i < n; ++i) y[i] = quantize_one(LOADF(x, i), s, inv, z, saturate);
  }
}
#endif

__kernel void dequantize_linear(__global const QT* x, __global const float* scale, __global const QT* zp,
                                int has_zp, __global float* y, int n, int qmode, int C, int inner, int block,
                                int cblocks) {
  int idx = get_global_id(0);
  if (idx >= n) return;
  int si = quant_param_index(idx, qmode, C, inner, block, cblocks);
#if QKIND == 1
  y[idx] = f8e4m3fn_to_float(x[idx]) * scale[si];
#elif QKIND == 2
  y[idx] = f8e5m2_to_float(x[idx]) * scale[si];
#else
  float z = has_zp ? (float)zp[si] : 0.0f;
  y[idx] = ((float)x[idx] - z) * scale[si];
#endif
}

// ---- DynamicQuantizeLinear ----
// min/max of x (with 0 included) as order-preserving int keys, so atomic_min/atomic_max on int
// (core OpenCL 1.1) can combine work-groups.
int dql_key(float f) {
  int i = as_int(f);
  return i >= 0 ? i : i ^ 0x7FFFFFFF;
}
float dql_unkey(int k) { return as_float(k >= 0 ? k : k ^ 0x7FFFFFFF); }

#define DQL_WG 256

// Work-group min/max of x[begin, n) with stride `step`; every item gets the results.
void dql_group_minmax(__global const float* x, int n, int begin, int step, __local float* lmin,
                      __local float* lmax, float* out_min, float* out_max) {
  int lid = get_local_id(0);
  float lo = 0.0f, hi = 0.0f;
  for (int i = begin; i < n; i += step) {
    float v = x[i];
    lo = fmin(lo, v);
    hi = fmax(hi, v);
  }
  lmin[lid] = lo;
  lmax[lid] = hi;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = DQL_WG / 2; s > 0; s >>= 1) {
    if (lid < s) {
      lmin[lid] = fmin(lmin[lid], lmin[lid + s]);
      lmax[lid] = fmax(lmax[lid], lmax[lid + s]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  *out_min = lmin[0];
  *out_max = lmax[0];
}

// The reference's scale and zero point from the range [lo, hi] (lo <= 0 <= hi).
void dql_params(float lo, float hi, float* scale, float* zp) {
  float s = (hi == lo ? 1.0f : hi - lo) / 255.0f;
  *scale = s;
  *zp = rint(fmin(fmax(0.0f - lo / s, 0.0f), 255.0f));
}

// Small tensors: one work-group does everything.
__kernel __attribute__((reqd_work_group_size(DQL_WG, 1, 1)))
void dql_single(__global const float* x, int n, __global uchar* y, __global float* y_scale, __global uchar* y_zp) {
  __local float lmin[DQL_WG], lmax[DQL_WG];
  float lo, hi, s, z;
  dql_group_minmax(x, n, get_local_id(0), DQL_WG, lmin, lmax, &lo, &hi);
  dql_params(lo, hi, &s, &z);
  for (int i = get_local_id(0); i < n; i += DQL_WG) y[i] = (uchar)fmin(fmax(rint(x[i] / s) + z, 0.0f), 255.0f);
  if (get_local_id(0) == 0) {
    *y_scale = s;
    *y_zp = (uchar)z;
  }
}

// Large tensors, four steps. keys: two ints of scratch (the start of y, which is written last).
__kernel void dql_init(__global int* keys) {
  keys[0] = dql_key(0.0f);
  keys[1] = dql_key(0.0f);
}

__kernel __attribute__((reqd_work_group_size(DQL_WG, 1, 1)))
void dql_reduce(__global const float* x, int n, __global int* keys) {
  __local float lmin[DQL_WG], lmax[DQL_WG];
  float lo, hi;
  dql_group_minmax(x, n, get_global_id(0), get_global_size(0), lmin, lmax, &lo, &hi);
  if (get_local_id(0) == 0) {
    atomic_min(&keys[0], dql_key(lo));
    atomic_max(&keys[1], dql_key(hi));
  }
}

__kernel void dql_finalize(__global const int* keys, __global float* y_scale, __global uchar* y_zp) {
  float s, z;
  dql_params(dql_unkey(keys[0]), dql_unkey(keys[1]), &s, &z);
  *y_scale = s;
  *y_zp = (uchar)z;
}

__kernel void dql_apply(__global const float* x, int n, __global const float* y_scale,
                        __global const uchar* y_zp, __global uchar* y) {
  int i = get_global_id(0);
  if (i >= n) return;
  y[i] = (uchar)fmin(fmax(rint(x[i] / *y_scale) + (float)*y_zp, 0.0f), 255.0f);
}
