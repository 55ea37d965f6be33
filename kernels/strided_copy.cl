// Strided copy: the device form of Transpose, Concat, Split, Slice, Expand and Tile (see
// runtime/backends/movement_layout.h). One work-item per element of the box; T is an
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

// A batch of [A, B] planes contiguous along A in the source and along B in the destination
// (NCHW <-> NHWC and friends). 16x16 tiles through local memory keep both the reads and the
// writes coalesced. Global size (ceil16(B), ceil16(A), batch), local size (16, 16, 1); the
// batch index decomposes over the remaining `outer_rank` dims.
#define TILE 16
__kernel void transpose_tiled(__global const T* in, __global T* out, int na, int nb, int in_stride_b,
                              int out_stride_a, int outer_rank, Dims outer_dims, Dims outer_in_strides,
                              Dims outer_out_strides, int in_offset, int out_offset) {
  __local T tile[TILE][TILE + 1];
  int rem = get_global_id(2), ii = in_offset, oi = out_offset;
  for (int d = outer_rank - 1; d >= 0; --d) {
    int c = rem % outer_dims.v[d];
    rem /= outer_dims.v[d];
    ii += c * outer_in_strides.v[d];
    oi += c * outer_out_strides.v[d];
  }
  int lx = get_local_id(0), ly = get_local_id(1);
  int a0 = get_group_id(1) * TILE, b0 = get_group_id(0) * TILE;
  // Read: consecutive work-items walk A, contiguous in the source.
  int a = a0 + lx, b = b0 + ly;
  if (a < na && b < nb) tile[ly][lx] = in[ii + a + b * in_stride_b];
  barrier(CLK_LOCAL_MEM_FENCE);
  // Write: consecutive work-items walk B, contiguous in the destination.
  a = a0 + ly;
  b = b0 + lx;
  if (a < na && b < nb) out[oi + a * out_stride_a + b] = tile[lx][ly];
}
