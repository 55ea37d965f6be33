// Resize: separable interpolation from per-axis tap tables computed by the compiler
// (runtime/backends/movement_resize.h). One work-item per output element; axes with one
// tap (the unresized ones, or nearest mode) are folded into a base offset and weight first,
// so only the interpolated axes enter the tap loop. Built with -DRANK=<output rank> so the
// per-axis loops have compile-time bounds (they unroll; the private arrays stay in registers).
// Data is float or half (-DKILN_HALF, kernels/float_storage.cl); the weight table is float.
typedef struct { int v[8]; } Dims;

__kernel void resize(__global const store_t* in, __global const int* idx, __global const float* w,
                     __global store_t* out, Dims out_dims, Dims in_strides, Dims taps, Dims offsets,
                     float extrapolation, int total) {
  int g = get_global_id(0);
  if (g >= total) return;
  int row[8];  // table entry of tap 0 for this element's coordinate, per axis
  int rem = g;
  for (int d = RANK - 1; d >= 0; --d) {
    int c = rem % out_dims.v[d];
    rem /= out_dims.v[d];
    row[d] = offsets.v[d] + c * taps.v[d];
  }
  int base = 0;
  float base_w = 1.0f;
  int multi[8], m = 0;
  for (int d = 0; d < RANK; ++d) {
    int i0 = idx[row[d]];
    if (i0 < 0) {  // outside the crop box (tf_crop_and_resize)
      STOREF(out, g, extrapolation);
      return;
    }
    if (taps.v[d] == 1) {
      base += i0 * in_strides.v[d];
      base_w *= w[row[d]];
    } else {
      multi[m++] = d;
    }
  }
  if (m == 0) {
    STOREF(out, g, base_w * LOADF(in, base));
    return;
  }
  int t[8];
  for (int k = 0; k < m; ++k) t[k] = 0;
  float acc = 0.0f;
  for (;;) {
    int off = base;
    float wt = base_w;
    for (int k = 0; k < m; ++k) {
      int d = multi[k];
      int e = row[d] + t[k];
      off += idx[e] * in_strides.v[d];
      wt *= w[e];
    }
    acc += wt * LOADF(in, off);
    int k = m - 1;
    for (; k >= 0; --k) {
      if (++t[k] < taps.v[multi[k]]) break;
      t[k] = 0;
    }
    if (k < 0) break;
  }
  STOREF(out, g, acc);
}

// Resize by whole factors in nearest mode (attribute "repeats", no tables): output coordinate c
// of axis d reads input coordinate c / repeats[d]: a copy of the element.
__kernel void resize_repeat(__global const store_t* in, __global store_t* out, Dims out_dims, Dims in_strides,
                            Dims repeats, int total) {
  int g = get_global_id(0);
  if (g >= total) return;
  int rem = g, base = 0;
  for (int d = RANK - 1; d >= 0; --d) {
    int c = rem % out_dims.v[d];
    rem /= out_dims.v[d];
    base += (c / repeats.v[d]) * in_strides.v[d];
  }
  STOREF(out, g, LOADF(in, base));
}
