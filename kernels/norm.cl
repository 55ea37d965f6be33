// BatchNormalization (inference) and the row normalizations (float or half storage:
// kernels/float_storage.cl) behind InstanceNormalization, GroupNormalization and
// LayerNormalization.

// One work-item per element. Parameters hold one value per channel (pidx_mod == C, inner
// divides out) or one per (channel, position) for pre-9 spatial=0 (pidx_mod == C * inner).
__kernel void batchnorm(__global const store_t* x, __global store_t* y, __global const store_t* scale,
                        __global const store_t* bias, __global const store_t* mean, __global const store_t* var,
                        int total, int inner, int pmod, int per_channel, float eps) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const int p = per_channel ? (i / inner) % pmod : i % pmod;
  STOREF(y, i, (LOADF(x, i) - LOADF(mean, p)) * (LOADF(scale, p) / sqrt(LOADF(var, p) + eps)) + LOADF(bias, p));
}

// Row normalization: each of `rows` contiguous rows of n values gets mean/variance (two-pass:
// mean first, then the mean of squared deviations, which stays accurate for rows with a large
// offset), then y = (x - mean) * inv_std * W + B. The W/B index of element j of row `row` is
// (row % mod) * a + (j / j_div) * b: InstanceNormalization uses (C, 1, 0), LayerNormalization
// (1, 0, 1) or (1, 0, 0) for a single value, GroupNormalization (G, C/G, 1) with j_div = the
// positions per channel, or (G, 1, 0) for per-group parameters.
typedef struct {
  int w_mod, w_a, w_b, b_mod, b_a, b_b, has_b, want_mean, want_inv, j_div;
} NormParams;

// y of element j (value xv) of row `row`.
float norm_value(float xv, int row, int j, float mean, float inv, __global const store_t* w,
                 __global const store_t* b, NormParams p) {
  const int jp = p.j_div == 1 ? j : j / p.j_div;
  float v = (xv - mean) * inv * LOADF(w, (row % p.w_mod) * p.w_a + jp * p.w_b);
  if (p.has_b) v += LOADF(b, (row % p.b_mod) * p.b_a + jp * p.b_b);
  return v;
}

void norm_write(__global const store_t* x, __global store_t* y, int xr, int row, int j, float mean, float inv,
                __global const store_t* w, __global const store_t* b, NormParams p) {
  STOREF(y, xr + j, norm_value(LOADF(x, xr + j), row, j, mean, inv, w, b, p));
}

// One work-item per row (short rows).
__kernel void rownorm_item(__global const store_t* x, __global store_t* y, __global const store_t* w,
                           __global const store_t* b, __global store_t* mean_out, __global store_t* inv_out, int rows,
                           int n, float eps, NormParams p) {
  const int row = get_global_id(0);
  if (row >= rows) return;
  const int xr = row * n;
  float s = 0.0f;
  for (int j = 0; j < n; ++j) s += LOADF(x, xr + j);
  const float mean = s / n;
  float v = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float d = LOADF(x, xr + j) - mean;
    v += d * d;
  }
  const float inv = 1.0f / sqrt(v / n + eps);
  if (p.want_mean) STOREF(mean_out, row, mean);
  if (p.want_inv) STOREF(inv_out, row, inv);
  for (int j = 0; j < n; ++j) norm_write(x, y, xr, row, j, mean, inv, w, b, p);
}

float group_sum(float v, __local float* part) {
  const int lid = get_local_id(0), ls = get_local_size(0);
  part[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = ls >> 1; s > 0; s >>= 1) {
    if (lid < s) part[lid] += part[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float r = part[0];
  barrier(CLK_LOCAL_MEM_FENCE);  // part is reused by the next reduction
  return r;
}

// One work-group per row (long rows).
__kernel void rownorm_group(__global const store_t* x, __global store_t* y, __global const store_t* w,
                            __global const store_t* b, __global store_t* mean_out, __global store_t* inv_out, int n,
                            float eps, NormParams p, __local float* part) {
  const int row = get_group_id(0);
  const int lid = get_local_id(0), ls = get_local_size(0);
  const int xr = row * n;
  float s = 0.0f;
  for (int j = lid; j < n; j += ls) s += LOADF(x, xr + j);
  const float mean = group_sum(s, part) / n;
  float v = 0.0f;
  for (int j = lid; j < n; j += ls) {
    const float d = LOADF(x, xr + j) - mean;
    v += d * d;
  }
  const float inv = 1.0f / sqrt(group_sum(v, part) / n + eps);
  if (lid == 0) {
    if (p.want_mean) STOREF(mean_out, row, mean);
    if (p.want_inv) STOREF(inv_out, row, inv);
  }
  for (int j = lid; j < n; j += ls) norm_write(x, y, xr, row, j, mean, inv, w, b, p);
}

#if defined(NORM_VPT) || defined(NORM_CHUNKS)
// Sum over the S work-items of a slice (S a power of two), every one of them getting it.
float slice_sum(float v, int lid, int lane, int S, __local float* part) {
  part[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = S >> 1; s > 0; s >>= 1) {
    if (lane < s) part[lid] += part[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float r = part[lid - lane];
  barrier(CLK_LOCAL_MEM_FENCE);  // part is reused by the next reduction
  return r;
}

#endif

#ifdef NORM_VPT
// Rows of up to S * NORM_VPT values, a slice of S work-items per row and several rows per
// work-group: a work-item keeps its NORM_VPT values (lane, lane + S, ...) in registers, so the
// row is read from memory once (rownorm_group reads it three times, one row per group: BERT's
// 768-wide LayerNorms ran at ~525 GB/s on an H100). Same two-pass mean and variance.
__kernel void rownorm_slice(__global const store_t* x, __global store_t* y, __global const store_t* w,
                            __global const store_t* b, __global store_t* mean_out, __global store_t* inv_out, int rows,
                            int n, float eps, NormParams p, int S, __local float* part) {
  const int lid = get_local_id(0), ls = get_local_size(0);
  const int lane = lid % S;
  const int row = get_group_id(0) * (ls / S) + lid / S;
  const bool live = row < rows;
  const int xr = row * n;
  float v[NORM_VPT];
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < NORM_VPT; ++i) {
    const int j = lane + i * S;
    v[i] = live && j < n ? LOADF(x, xr + j) : 0.0f;
    s += v[i];
  }
  const float mean = slice_sum(s, lid, lane, S, part) / n;
  float q = 0.0f;
#pragma unroll
  for (int i = 0; i < NORM_VPT; ++i) {
    const float d = lane + i * S < n ? v[i] - mean : 0.0f;
    q += d * d;
  }
  const float inv = 1.0f / sqrt(slice_sum(q, lid, lane, S, part) / n + eps);
  if (!live) return;
  if (lane == 0) {
    if (p.want_mean) STOREF(mean_out, row, mean);
    if (p.want_inv) STOREF(inv_out, row, inv);
  }
#pragma unroll
  for (int i = 0; i < NORM_VPT; ++i) {
    const int j = lane + i * S;
    if (j >= n) break;
    STOREF(y, xr + j, norm_value(v[i], row, j, mean, inv, w, b, p));
  }
}
#endif

#ifdef NORM_CHUNKS
// slice_sum for slices of whole warps (S >= 32): shuffles within each warp, then (S > 32) one
// exchange of the warps' partials through __local memory.
float warp_slice_sum(float v, int lid, int lane, int S, __local float* part) {
#if KILN_PTX
  for (int m = 16; m > 0; m >>= 1) v += warp_shfl_xor(v, m);
  if (S == 32) return v;
  if (lid % 32 == 0) part[lid / 32] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  const int w0 = (lid - lane) / 32;
  float r = 0.0f;
  for (int w = 0; w < S / 32; ++w) r += part[w0 + w];
  barrier(CLK_LOCAL_MEM_FENCE);  // part is reused by the next reduction
  return r;
#else
  return slice_sum(v, lid, lane, S, part);
#endif
}

inline float sum8(float8 v) { return ((v.s0 + v.s1) + (v.s2 + v.s3)) + ((v.s4 + v.s5) + (v.s6 + v.s7)); }

// LayerNormalization rows (W and B indexed by the position in the row) of n values, n a
// multiple of 8: a slice of S work-items per row, each holding NORM_CHUNKS groups of 8
// consecutive values (group c * S + lane), read and written 16 or 32 bytes at a time, and warp
// shuffles for the sums where the kernel runs as PTX. rownorm_slice's one value per access and
// barrier tree ran BERT's 768-wide rows at ~1.1 TB/s on an H100.
// With -D NORM_QOUT (and quantize_value.cl's build options): y also goes to yq quantized per tensor
// (qs[0], qz[0]) from its stored values, as a QuantizeLinear reading y would
// (runtime/ops/quantized_output.h).
#ifdef NORM_QOUT
#define NORM_QOUT_PARAMS , __global QT* yq, __global const float* qs, __global const QT* qz, int saturate
#else
#define NORM_QOUT_PARAMS
#endif
__kernel void rownorm_x8(__global const store_t* x, __global store_t* y, __global const store_t* w,
                         __global const store_t* b, __global store_t* mean_out, __global store_t* inv_out, int rows,
                         int n, float eps, int has_b, int want_mean, int want_inv, int S,
                         __local float* part NORM_QOUT_PARAMS) {
  const int lid = get_local_id(0), ls = get_local_size(0);
  const int lane = lid % S;
  const int row = get_group_id(0) * (ls / S) + lid / S;
  const bool live = row < rows;
  const int n8 = n / 8, xr8 = row * n8;
  float8 v[NORM_CHUNKS];
  float s = 0.0f;
#pragma unroll
  for (int c = 0; c < NORM_CHUNKS; ++c) {
    const int j8 = c * S + lane;
    v[c] = live && j8 < n8 ? load8f(x, xr8 + j8) : (float8)(0.0f);
    s += sum8(v[c]);
  }
  const float mean = warp_slice_sum(s, lid, lane, S, part) / n;
  float q = 0.0f;
#pragma unroll
  for (int c = 0; c < NORM_CHUNKS; ++c) {
    const float8 d = c * S + lane < n8 ? v[c] - mean : (float8)(0.0f);
    q += sum8(d * d);
  }
  const float inv = 1.0f / sqrt(warp_slice_sum(q, lid, lane, S, part) / n + eps);
  if (!live) return;
  if (lane == 0) {
    if (want_mean) STOREF(mean_out, row, mean);
    if (want_inv) STOREF(inv_out, row, inv);
  }
#pragma unroll
  for (int c = 0; c < NORM_CHUNKS; ++c) {
    const int j8 = c * S + lane;
    if (j8 >= n8) break;
    float8 o = (v[c] - mean) * inv * load8f(w, j8);
    if (has_b) o += load8f(b, j8);
#ifdef NORM_QOUT
    const float qscale = qs[0];
    ((__global uint2*)yq)[xr8 + j8] =
        quantize8(store8f_stored(y, xr8 + j8, o), qscale, 1.0f / qscale, (float)qz[0], saturate);
#else
    store8f(y, xr8 + j8, o);
#endif
  }
}
#endif
