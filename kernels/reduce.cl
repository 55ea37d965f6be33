// ReduceSum/Mean/Max/Min over float32 (or half storage: kernels/float_storage.cl). Build options: -DOP=0 (sum; mean multiplies by
// `scale` = 1/R), 1 (max), 2 (min).
//
// A reduction is described by its merged dims (runtime/backends/normalization_geometry.h):
// output o decomposes over the kept dims into a base offset, reduced element r over the
// reduced dims into an offset added to it. nred == 1 (one strided run) is the common case and
// skips the decomposition.
typedef struct { int v[8]; } Dims;

#if OP == 0
#define INIT 0.0f
#define COMBINE(a, b) ((a) + (b))
#elif OP == 1
#define INIT (-INFINITY)
#define COMBINE(a, b) (((b) > (a) || isnan(b)) ? (b) : (a))
#else
#define INIT INFINITY
#define COMBINE(a, b) (((b) < (a) || isnan(b)) ? (b) : (a))
#endif

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

// One work-item per output: short rows, or strided rows where neighbouring work-items read
// neighbouring addresses.
__kernel void reduce_item(__global const store_t* x, __global store_t* y, int nout, int nkeep, Dims keep_dims,
                          Dims keep_strides, int nred, Dims red_dims, Dims red_strides, int R, float scale) {
  const int o = get_global_id(0);
  if (o >= nout) return;
  const int base = decompose(o, nkeep, keep_dims, keep_strides);
  float acc = INIT;
  for (int r = 0; r < R; ++r) acc = COMBINE(acc, LOADF(x, base + red_offset(r, nred, red_dims, red_strides)));
#if OP == 0
  acc *= scale;
#endif
  STOREF(y, o, acc);
}

// One work-group per output: long rows. Work-items stride the row, then a __local tree
// combines their partials (local size is a power of two).
__kernel void reduce_group(__global const store_t* x, __global store_t* y, int nout, int nkeep, Dims keep_dims,
                           Dims keep_strides, int nred, Dims red_dims, Dims red_strides, int R, float scale,
                           __local float* part) {
  const int o = get_group_id(0);
  const int lid = get_local_id(0), ls = get_local_size(0);
  const int base = decompose(o, nkeep, keep_dims, keep_strides);
  float acc = INIT;
  for (int r = lid; r < R; r += ls) acc = COMBINE(acc, LOADF(x, base + red_offset(r, nred, red_dims, red_strides)));
  part[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = ls >> 1; s > 0; s >>= 1) {
    if (lid < s) part[lid] = COMBINE(part[lid], part[lid + s]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) {
    acc = part[0];
#if OP == 0
    acc *= scale;
#endif
    STOREF(y, o, acc);
  }
}
