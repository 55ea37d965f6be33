// Reductions over float32 (or half storage: kernels/float_storage.cl). Build options:
//   -DOP=0 sum (mean multiplies by `scale` = 1/R), 1 max, 2 min, 3 product
//   -DMAP=0 x, 1 |x|, 2 x*x: applied to each element before combining (L1, L2, SumSquare)
//   -DFINISH=0 none, 1 sqrt, 2 log: applied to the result (L2, LogSum)
//   -DLSE=1 log(sum(exp(x))) as m + log(sum(exp(x - m))), m the maximum (ReduceLogSumExp)
//
// A reduction is described by its merged dims (runtime/backends/normalization_geometry.h):
// output o decomposes over the kept dims into a base offset, reduced element r over the
// reduced dims into an offset added to it. nred == 1 (one strided run) is the common case and
// skips the decomposition.
typedef struct { int v[8]; } Dims;

#ifndef MAP
#define MAP 0
#endif
#ifndef FINISH
#define FINISH 0
#endif
#ifndef LSE
#define LSE 0
#endif

#if OP == 0
#define INIT 0.0f
#define COMBINE(a, b) ((a) + (b))
#elif OP == 1
#define INIT (-INFINITY)
#define COMBINE(a, b) (((b) > (a) || isnan(b)) ? (b) : (a))
#elif OP == 2
#define INIT INFINITY
#define COMBINE(a, b) (((b) < (a) || isnan(b)) ? (b) : (a))
#else
#define INIT 1.0f
#define COMBINE(a, b) ((a) * (b))
#endif

#if MAP == 1
#define MAPF(v) fabs(v)
#elif MAP == 2
#define MAPF(v) ((v) * (v))
#else
#define MAPF(v) (v)
#endif

#define MAXF(a, b) (((b) > (a) || isnan(b)) ? (b) : (a))

float finish(float acc, float scale) {
#if OP == 0
  acc *= scale;
#endif
#if FINISH == 1
  acc = sqrt(acc);
#elif FINISH == 2
  acc = log(acc);
#endif
  return acc;
}

int decompose(int i, int n, Dims dims, Dims strides) {
  int off = 0;
  for (int d = n - 1; d >= 0; --d) {
    const int q = i / dims.v[d];
    off += (i - q * dims.v[d]) * strides.v[d];
    i = q;
  }
  return off;
}

int red_offset(int r, int nred, Dims red_dims, Dims red_strides) {
  return nred == 1 ? r * red_strides.v[0] : decompose(r, nred, red_dims, red_strides);
}

#define AT(r) LOADF(x, base + red_offset((r), nred, red_dims, red_strides))

// One work-item per output: short rows, or strided rows where neighbouring work-items read
// neighbouring addresses.
__kernel void reduce_item(__global const store_t* x, __global store_t* y, int nout, int nkeep, Dims keep_dims,
                          Dims keep_strides, int nred, Dims red_dims, Dims red_strides, int R, float scale) {
  const int o = get_global_id(0);
  if (o >= nout) return;
  const int base = decompose(o, nkeep, keep_dims, keep_strides);
#if LSE
  float m = -INFINITY;
  for (int r = 0; r < R; ++r) m = MAXF(m, AT(r));
  float s = 0.0f;
  if (isfinite(m))
    for (int r = 0; r < R; ++r) s += exp(AT(r) - m);
  STOREF(y, o, isfinite(m) ? m + log(s) : m);
#else
  float acc = INIT;
  for (int r = 0; r < R; ++r) acc = COMBINE(acc, MAPF(AT(r)));
  STOREF(y, o, finish(acc, scale));
#endif
}

// One work-group per output: long rows. Work-items stride the row, then a __local tree
// combines their partials (local size is a power of two).
__kernel void reduce_group(__global const store_t* x, __global store_t* y, int nout, int nkeep, Dims keep_dims,
                           Dims keep_strides, int nred, Dims red_dims, Dims red_strides, int R, float scale,
                           __local float* part) {
  const int o = get_group_id(0);
  const int lid = get_local_id(0), ls = get_local_size(0);
  const int base = decompose(o, nkeep, keep_dims, keep_strides);
#if LSE
  float m = -INFINITY;
  for (int r = lid; r < R; r += ls) m = MAXF(m, AT(r));
  part[lid] = m;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = ls >> 1; s > 0; s >>= 1) {
    if (lid < s) part[lid] = MAXF(part[lid], part[lid + s]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  m = part[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  float acc = 0.0f;
  if (isfinite(m))
    for (int r = lid; r < R; r += ls) acc += exp(AT(r) - m);
  part[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = ls >> 1; s > 0; s >>= 1) {
    if (lid < s) part[lid] += part[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) STOREF(y, o, isfinite(m) ? m + log(part[0]) : m);
#else
  float acc = INIT;
  for (int r = lid; r < R; r += ls) acc = COMBINE(acc, MAPF(AT(r)));
  part[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = ls >> 1; s > 0; s >>= 1) {
    if (lid < s) part[lid] = COMBINE(part[lid], part[lid + s]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) STOREF(y, o, finish(part[0], scale));
#endif
}
