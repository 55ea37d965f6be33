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

// One work-group per row (long rows): __local tree reductions for the max and the sum.
__kernel void softmax_group(__global const store_t* x, __global store_t* y, int n, int inner, __local float* part) {
  const int row = get_group_id(0);
  const int lid = get_local_id(0), ls = get_local_size(0);
  const int o = row / inner, i = row - o * inner;
  const int base = o * n * inner + i;
  float mx = -INFINITY;
  for (int k = lid; k < n; k += ls) mx = fmax(mx, LOADF(x, base + k * inner));
  part[lid] = mx;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = ls >> 1; s > 0; s >>= 1) {
    if (lid < s) part[lid] = fmax(part[lid], part[lid + s]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  mx = part[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  float sum = 0.0f;
  for (int k = lid; k < n; k += ls) sum += exp(LOADF(x, base + k * inner) - mx);
  part[lid] = sum;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = ls >> 1; s > 0; s >>= 1) {
    if (lid < s) part[lid] += part[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  sum = part[0];
  for (int k = lid; k < n; k += ls) STOREF(y, base + k * inner, finish(LOADF(x, base + k * inner), mx, sum));
}
