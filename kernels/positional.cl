// CumSum (float32 or half storage: kernels/float_storage.cl; int32/int64), Trilu and OneHot (element bytes:
// -DT=uchar|ushort|uint|ulong; OneHot's indices -DIDX=int|long|float).
// runtime/backends/opencl/positional.cpp.

// One work-item per row along the axis: rows of n at stride `inner`. Built with
// -DCT=int|long the sums are integer ones, wrapping (computed unsigned).
#ifdef CT
__kernel void cumsum(__global const CT* x, __global CT* y, int rows, int n, int inner, int exclusive, int reverse) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int base = (r / inner) * n * inner + r % inner;
  ulong acc = 0;
  for (int s = 0; s < n; ++s) {
    const int at = base + (reverse ? n - 1 - s : s) * inner;
    const ulong v = (ulong)(long)x[at];
    if (!exclusive) acc += v;
    y[at] = (CT)acc;
    if (exclusive) acc += v;
  }
}
#else
__kernel void cumsum(__global const store_t* x, __global store_t* y, int rows, int n, int inner, int exclusive,
                     int reverse) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int base = (r / inner) * n * inner + r % inner;
  float acc = 0.0f;
  for (int s = 0; s < n; ++s) {
    const int at = base + (reverse ? n - 1 - s : s) * inner;
    const float v = LOADF(x, at);
    if (!exclusive) acc += v;
    STOREF(y, at, acc);
    if (exclusive) acc += v;
  }
}
#endif

#ifdef T
// Element (i, j) of each rows x cols matrix: kept when j - i >= k (upper) or <= k, else 0.
__kernel void trilu(__global const T* x, __global T* y, int total, int rows, int cols, int k, int upper) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int j = g % cols, i = (g / cols) % rows;
  const int keep = upper ? j - i >= k : j - i <= k;
  y[g] = keep ? x[g] : (T)0;
}

// Output element g = (o, d, i) with d along the new axis of size depth.
__kernel void onehot(__global const IDX* ind, __global const T* values, __global T* y, int total, int depth, int inner) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int i = g % inner, d = (g / inner) % depth, o = g / (inner * depth);
  long idx = (long)ind[o * inner + i];
  if (idx < 0) idx += depth;
  y[g] = values[idx == d ? 1 : 0];
}
#endif
