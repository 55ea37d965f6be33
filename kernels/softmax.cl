// Softmax / LogSoftmax (-DLOG=1; float or half storage: kernels/float_storage.cl) over rows of n elements at stride `inner`; row id = outer *
// inner + i. Numerically stable: max subtracted before exp.

float finish(float v, float mx, float sum) {
#if LOG
  return v - mx - log(sum);
#else
  return exp(v - mx) / sum;
#endif
}

// One work-item per row: short rows, or strided rows (inner > 1) where neighbouring
// work-items read neighbouring addresses.
__kernel void softmax_item(__global const store_t* x, __global store_t* y, int rows, int n, int inner) {
  const int row = get_global_id(0);
  if (row >= rows) return;
  const int o = row / inner, i = row - o * inner;
  const int base = o * n * inner + i;
  float mx = -INFINITY;
  for (int k = 0; k < n; ++k) mx = fmax(mx, LOADF(x, base + k * inner));
  float sum = 0.0f;
  for (int k = 0; k < n; ++k) sum += exp(LOADF(x, base + k * inner) - mx);
  for (int k = 0; k < n; ++k) STOREF(y, base + k * inner, finish(LOADF(x, base + k * inner), mx, sum));
}

// Rows of a work-group: each slice of `S` work-items (a power of two dividing the group) owns one
// row, with __local tree reductions within the slice for the max and the sum. Long rows take
// the whole group; short ones several rows per group, so a 128-element row (attention scores)
// does not leave half of a 256-item group idle behind eight barriers.
__kernel void softmax_group(__global const store_t* x, __global store_t* y, int rows, int n, int inner, int S,
                            __local float* part) {
  const int lid = get_local_id(0), ls = get_local_size(0);
  const int slice = lid / S, lane = lid - slice * S, head = slice * S;
  const int row = get_group_id(0) * (ls / S) + slice;
  const bool live = row < rows;
  const int o = row / inner, i = row - o * inner;
  const int base = o * n * inner + i;
  float mx = -INFINITY;
  if (live)
    for (int k = lane; k < n; k += S) mx = fmax(mx, LOADF(x, base + k * inner));
  part[lid] = mx;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = S >> 1; s > 0; s >>= 1) {
    if (lane < s) part[lid] = fmax(part[lid], part[lid + s]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  mx = part[head];
  barrier(CLK_LOCAL_MEM_FENCE);
  float sum = 0.0f;
  if (live)
    for (int k = lane; k < n; k += S) sum += exp(LOADF(x, base + k * inner) - mx);
  part[lid] = sum;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = S >> 1; s > 0; s >>= 1) {
    if (lane < s) part[lid] += part[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  sum = part[head];
  if (live)
    for (int k = lane; k < n; k += S) STOREF(y, base + k * inner, finish(LOADF(x, base + k * inner), mx, sum));
}
