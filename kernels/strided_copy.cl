// Strided copy: the device form of Transpose, Concat, Split, Slice, Expand and Tile (see
// runtime/backends/cpu/movement_layout.h). One work-item per element of the box; T is an
// unsigned type of the (possibly widened) element size, so any dtype moves as raw bytes.
// Built with -DT=uchar|ushort|uint|ulong|uint4.
typedef struct { int v[8]; } Dims;

__kernel void strided_copy(__global const T* in, __global T* out, int rank, Dims dims, Dims in_strides,
                           Dims out_strides, int in_offset, int out_offset, int n) {
  int g = get_global_id(0);
  if (g >= n) return;
  int rem = g, ii = in_offset, oi = out_offset;
  for (int d = rank - 1; d >= 0; --d) {
    int c = rem % dims.v[d];
    rem /= dims.v[d];
    ii += c * in_strides.v[d];
    oi += c * out_strides.v[d];
  }
  out[oi] = in[ii];
}
