// GatherElements, GatherND, ScatterElements, ScatterND (runtime/backends/opencl/gather_scatter.cpp).
// Built with -DT=<element type> (an unsigned type of the element's size when only bytes move,
// the arithmetic type for scatter reductions), -DIDX=int|long and, for scatters, -DRED=<code>
// (runtime/backends/gather_scatter_attrs.h: 0 none, 1 add, 2 mul, 3 max, 4 min).
//
// A device kernel cannot fail: an index out of range reads 0 (gathers) or is skipped
// (scatters); the CPU kernels and the compiler (for constant indices) report it.
// Scatters never race: each work-item owns a set of output elements and applies the updates
// that land there in the order the CPU kernel does.
typedef struct { int v[8]; } Dims;

#ifndef RED
#define RED 0
#endif

// idx made >= 0 for a dim of n; -1 when out of range.
long norm_index(long idx, int n) {
  if (idx < 0) idx += n;
  return (idx >= 0 && idx < n) ? idx : -1;
}

void combine(__global T* d, T v) {
#if RED == 1
  *d = *d + v;
#elif RED == 2
  *d = *d * v;
#elif RED == 3
  const T o = *d;
  *d = (v > o || v != v) ? v : o;
#elif RED == 4
  const T o = *d;
  *d = (v < o || v != v) ? v : o;
#else
  *d = v;
#endif
}

// out has the indices' shape (rank dims, `ishape`); the coordinate along `axis` comes from the
// index. `dstride` are data's element strides, n_axis its size along axis.
__kernel void gather_elements(__global const T* data, __global const IDX* ind, __global T* out, int total, int rank,
                              Dims ishape, Dims dstride, int axis, int n_axis) {
  const int g = get_global_id(0);
  if (g >= total) return;
  int rest = g, off = 0;
  for (int d = rank - 1; d >= 0; --d) {
    const int c = rest % ishape.v[d];
    rest /= ishape.v[d];
    off += (d == axis ? 0 : c) * dstride.v[d];
  }
  const long i = norm_index((long)ind[g], n_axis);
  out[g] = i < 0 ? (T)0 : data[off + (int)i * dstride.v[axis]];
}

// Output element g = (tuple t, slice element s); tuple t of batch t / tuples reads k indices
// for data dims of sizes `dims` and strides `strides`.
__kernel void gather_nd(__global const T* data, __global const IDX* ind, __global T* out, int total, int slice,
                        int tuples, int batch_stride, int k, Dims dims, Dims strides) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int t = g / slice, s = g - t * slice;
  int off = (t / tuples) * batch_stride;
  for (int j = 0; j < k; ++j) {
    const long i = norm_index((long)ind[t * k + j], dims.v[j]);
    if (i < 0) {
      out[g] = (T)0;
      return;
    }
    off += (int)i * strides.v[j];
  }
  out[g] = data[off + s];
}

// One work-item per line of the updates along axis (every coordinate but axis fixed): it
// applies the line's updates in order. `ushape` is the updates' (= indices') shape.
__kernel void scatter_elements(__global const IDX* ind, __global const T* upd, __global T* out, int lines, int rank,
                               Dims ushape, Dims ostride, int axis, int n_axis) {
  const int l = get_global_id(0);
  if (l >= lines) return;
  int rest = l, uoff = 0, ooff = 0, ustride = 1, axis_ustride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    if (d == axis) {
      axis_ustride = ustride;
    } else {
      const int c = rest % ushape.v[d];
      rest /= ushape.v[d];
      uoff += c * ustride;
      ooff += c * ostride.v[d];
    }
    ustride *= ushape.v[d];
  }
  for (int j = 0; j < ushape.v[axis]; ++j) {
    const int u = uoff + j * axis_ustride;
    const long i = norm_index((long)ind[u], n_axis);
    if (i >= 0) combine(out + ooff + (int)i * ostride.v[axis], upd[u]);
  }
}

// One work-item per slice element s: it walks every index tuple in order.
__kernel void scatter_nd(__global const IDX* ind, __global const T* upd, __global T* out, int slice, int tuples, int k,
                         Dims dims, Dims strides) {
  const int s = get_global_id(0);
  if (s >= slice) return;
  for (int t = 0; t < tuples; ++t) {
    int off = 0, ok = 1;
    for (int j = 0; j < k; ++j) {
      const long i = norm_index((long)ind[t * k + j], dims.v[j]);
      ok = ok && i >= 0;
      off += ok ? (int)i * strides.v[j] : 0;
    }
    if (ok) combine(out + off + s, upd[t * slice + s]);
  }
}
