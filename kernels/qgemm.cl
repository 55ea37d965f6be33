// Tiled integer GEMM behind MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv (see
// QGemm in runtime/backends/quantize_geometry.h): per batch item (get_group_id(2))
//   C[m][n] = sum_k (A[m][k] - za(m)) * (B[k][n] - zb(n))   in int32,
// A and B tiles staged in local memory with the zero points already subtracted. Convolutions
// read B as the implicit im2col of x (padding adds 0); kernels/qgemm_geometry.cl (prepended)
// has the index math. Options:
//   -D TA=, TB=   element types of A (rows: a / w) and B (columns: b / x)
//   -D CONV=0|1   B is x read through the convolution geometry (-D NHWC=1: channels-last x, weights
//                 and output, runtime/ops/channels_last.h)
//   -D REQUANT=0|1 -D OUT_T= -D QLO= -D QHI=  int32 output, or requantized int8/uint8:
//                 q = clamp(rint((acc + bias[row]) * ((sa * sb) / sy)) + yzp, QLO, QHI)
//   -D EPI=1 -D RES_T= -D RES_Q=0|1 -D OUT_FLOAT=0|1  kiln's fused epilogue (runtime/backends/
//                 quantize_geometry.h): r = (acc + bias) * sa * sb, residual and activation
//                 (kiln_act, from kernels/linear_activation.cl prepended by the host) in float,
//                 then requantized (q = clamp(rint(r / sy) + yzp)) or stored as float.
// The output stage is kernels/epilogue_qgemm.cl (prepended by the host).
// A work-group of 16x16 items computes a 64x64 tile, 4x4 outputs per item (rows ty + 16i,
// columns tx + 16j, so local reads are conflict-free and global writes coalesce); K steps by 16.
#pragma OPENCL FP_CONTRACT OFF

#define TS 64
#define RT 4
#define TK 16
#define WG 16


__kernel __attribute__((reqd_work_group_size(WG, WG, 1)))
void qgemm(__global const TA* A, __global const TB* B, __global const TA* za, int za_mode, __global const TB* zb,
           int zb_mode, int M, int N, int K, int nbd, Dims bdims, Dims a_bs, Dims b_bs, ConvGeo geo, QEPI_PARAMS) {
  __local int As[TK][TS + 1];
  __local int Bs[TK][TS + 1];
  const int tx = get_local_id(0), ty = get_local_id(1);
  const int lid = ty * WG + tx;
  const int n0 = get_group_id(0) * TS, m0 = get_group_id(1) * TS;
  const int b = get_group_id(2);

  int a_off, b_off, row_base;
  qg_batch_offsets(b, M, K, nbd, bdims, a_bs, b_bs, geo, &a_off, &b_off, &row_base);
  const int c_off = b * M * N;

  // This item always loads B column nn (and rows kb + 4r of each K tile).
  const int nn = lid % TS, kb = lid / TS;
  const int n_load = n0 + nn;
  const int zbv = zb_mode == 0 ? 0 : (int)zb[zb_mode == 2 && n_load < N ? n_load : 0];
#if CONV
  // Input coordinates of output position n_load before the kernel offset.
  int base[3];
  qg_conv_base(n_load < N ? n_load : 0, geo, base);
#endif

  int acc[RT][RT];
  for (int i = 0; i < RT; ++i)
    for (int j = 0; j < RT; ++j) acc[i][j] = 0;
  for (int k0 = 0; k0 < K; k0 += TK) {
    // A tile: TS rows x TK, consecutive items along k.
    for (int r = 0; r < RT; ++r) {
      const int e = lid + r * WG * WG;
      const int mm = e / TK, kk = e % TK;
      const int m = m0 + mm, k = k0 + kk;
      int v = 0;
      if (m < M && k < K) {
        const int z = za_mode == 0 ? 0 : (int)za[za_mode == 2 ? row_base + m : 0];
        v = (int)A[a_off + m * K + k] - z;
      }
      As[kk][mm] = v;
    }
    // B tile: TK x TS, consecutive items along n.
    for (int r = 0; r < RT; ++r) {
      const int kk = kb + r * (WG * WG / TS);
      const int k = k0 + kk;
      int v = 0;
      if (n_load < N && k < K) {
#if CONV
        const int idx = qg_im2col_index(k, b_off, base, geo);
        if (idx >= 0) v = (int)B[idx] - zbv;
#else
        v = (int)B[b_off + k * N + n_load] - zbv;
#endif
      }
      Bs[kk][nn] = v;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int kk = 0; kk < TK; ++kk) {
      int a[RT], bv[RT];
      for (int i = 0; i < RT; ++i) a[i] = As[kk][ty + i * WG];
      for (int j = 0; j < RT; ++j) bv[j] = Bs[kk][tx + j * WG];
      for (int i = 0; i < RT; ++i)
        for (int j = 0; j < RT; ++j) acc[i][j] += a[i] * bv[j];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  QEPI_PREP
  for (int i = 0; i < RT; ++i) {
    const int m = m0 + ty + i * WG;
    if (m >= M) continue;
    for (int j = 0; j < RT; ++j) {
      const int n = n0 + tx + j * WG;
      if (n < N) qgemm_store(acc[i][j], row_base + m, n, NHWC ? c_off + n * M + m : c_off + m * N + n, qepi_c, QEPI_ARGS);
    }
  }
}
