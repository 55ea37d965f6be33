// Index math shared by the tiled integer GEMM (kernels/qgemm.cl) and the FP8 linear kernel
// (kernels/fp8_linear.cl); the host prepends this file to both. Batch item b of the grid
// (get_group_id(2)) is (image, group) for a convolution (-D CONV=1), whose column side B is the
// implicit im2col of x; otherwise b splits over the output batch dims.
typedef struct { int v[8]; } Dims;
// Convolution geometry (runtime/backends/opencl/qgemm_geometry.h), spatial dims right-aligned
// into 3 (missing leading dims are size 1): [0..2] in, [3..5] out, [6..8] kernel, [9..11]
// strides, [12..14] dilations, [15..17] pads (begin), [18] C, [19] Cg, [20] groups,
// [21] in_size, [22] kernel_size.
typedef struct { int v[24]; } ConvGeo;

// Element offsets of batch item b in A (rows) and B (columns), and its first global row.
void qg_batch_offsets(int b, int M, int K, int nbd, Dims bdims, Dims a_bs, Dims b_bs, ConvGeo geo, int* a_off,
                      int* b_off, int* row_base) {
  *a_off = 0;
  *b_off = 0;
  *row_base = 0;
#if CONV
  const int img = b / geo.v[20], g = b % geo.v[20];
  *a_off = g * M * K;
  *b_off = (img * geo.v[18] + g * geo.v[19]) * geo.v[21];
  *row_base = g * M;
#else
  int rem = b;
  for (int d = nbd - 1; d >= 0; --d) {
    const int i = rem % bdims.v[d];
    rem /= bdims.v[d];
    *a_off += i * a_bs.v[d];
    *b_off += i * b_bs.v[d];
  }
#endif
}

// Input coordinates of output position p before the kernel offset (strides and begin pads).
void qg_conv_base(int p, ConvGeo geo, int base[3]) {
  const int o2 = p % geo.v[5];
  p /= geo.v[5];
  const int o1 = p % geo.v[4];
  const int o0 = p / geo.v[4];
  base[0] = o0 * geo.v[9] - geo.v[15];
  base[1] = o1 * geo.v[10] - geo.v[16];
  base[2] = o2 * geo.v[11] - geo.v[17];
}

// Index in B of im2col element k for the output position whose base qg_conv_base gave; -1
// where the kernel reads padding.
// -D NHWC=1: channels-last x and weights (runtime/ops/channels_last.h): k = (kernel offset,
// channel), the channel fastest.
#ifndef NHWC
#define NHWC 0
#endif
int qg_im2col_index(int k, int b_off, const int base[3], ConvGeo geo) {
#if NHWC
  const int c = k % geo.v[18];
  int kr = k / geo.v[18];
#else
  const int c = k / geo.v[22];
  int kr = k % geo.v[22];
#endif
  const int k2 = kr % geo.v[8];
  kr /= geo.v[8];
  const int k1 = kr % geo.v[7];
  const int kd0 = kr / geo.v[7];
  const int i0 = base[0] + kd0 * geo.v[12], i1 = base[1] + k1 * geo.v[13], i2 = base[2] + k2 * geo.v[14];
  if (i0 < 0 || i0 >= geo.v[0] || i1 < 0 || i1 >= geo.v[1] || i2 < 0 || i2 >= geo.v[2]) return -1;
#if NHWC
  return b_off + ((i0 * geo.v[1] + i1) * geo.v[2] + i2) * geo.v[18] + c;
#else
  return b_off + c * geo.v[21] + (i0 * geo.v[1] + i1) * geo.v[2] + i2;
#endif
}
