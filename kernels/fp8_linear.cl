// FP8 linear kernel behind Fp8Conv and Fp8MatMul (operands and arithmetic:
// runtime/backends/quantize_fp8_geometry.h). Needs kernels/float8.cl, kernels/qgemm_geometry.cl
// (the batch and im2col index math) and kernels/epilogue_fp8.cl (the output stage) prepended.
// Per batch item (get_group_id(2)):
//   acc[m][n] = sum_k decode(A[m][k]) * decode(B[k][n])   in float32, k ascending,
//   y = cast((acc * (sa[m] * sb[n]) + bias) / sy)
// A and B tiles are decoded once into local memory as float32. Convolutions read B as the
// implicit im2col of x (padding reads 0). Options:
//   -D AK=, BK=, YK=  kind of A, B and y: 0 float32, 1 float8e4m3fn, 2 float8e5m2
//   -D CONV=0|1  -D BIAS_ROW=0|1 (the bias is per row for convolutions, per column for matmul)
//   -D NHWC=1    a channels-last convolution (runtime/ops/channels_last.h)
//   -D EPI=1 -D RK=  the fused epilogue (kiln_act from kernels/linear_activation.cl prepended):
//                residual of kind RK (0 float32, 1/2 FP8 times its scale) and activation
// A work-group of 16x16 items computes a 64x64 tile, 4x4 outputs per item (rows ty + 16i,
// columns tx + 16j); K steps by 16.
#pragma OPENCL FP_CONTRACT OFF

#define TS 64
#define RT 4
#define TK 16
#define WG 16

// FP8 operands decode through a 256-entry table in local memory that the work-group's 256 items
// fill once (one code each): branch-free lookups in the tile loads.
#if AK == 0
typedef float a_t;
#define DECODE_A(v) (v)
#else
typedef uchar a_t;
#define DECODE_A(v) lut_a[v]
#endif
#if AK == 1
#define DECODE_A_CODE(c) f8e4m3fn_to_float(c)
#else
#define DECODE_A_CODE(c) f8e5m2_to_float(c)
#endif

#if BK == 0
typedef float b_t;
#define DECODE_B(v) (v)
#else
typedef uchar b_t;
#define DECODE_B(v) lut_b[v]
#endif
#if BK == 1
#define DECODE_B_CODE(c) f8e4m3fn_to_float(c)
#else
#define DECODE_B_CODE(c) f8e5m2_to_float(c)
#endif

__kernel __attribute__((reqd_work_group_size(WG, WG, 1)))
void fp8_linear(__global const a_t* A, __global const b_t* B, int M, int N, int K, int nbd, Dims bdims, Dims a_bs,
                Dims b_bs, ConvGeo geo, F8EPI_PARAMS) {
  __local float As[TK][TS + 1];
  __local float Bs[TK][TS + 1];
  const int tx = get_local_id(0), ty = get_local_id(1);
  const int lid = ty * WG + tx;
  const int n0 = get_group_id(0) * TS, m0 = get_group_id(1) * TS;
  const int b = get_group_id(2);
#if AK != 0
  __local float lut_a[256];
  lut_a[lid] = DECODE_A_CODE((uchar)lid);
#endif
#if BK != 0
  __local float lut_b[256];
  lut_b[lid] = DECODE_B_CODE((uchar)lid);
#endif

  int a_off, b_off, row_base;
  qg_batch_offsets(b, M, K, nbd, bdims, a_bs, b_bs, geo, &a_off, &b_off, &row_base);
  const int c_off = b * M * N;

  // This item always loads B column nn (rows kb + 4r of each K tile).
  const int nn = lid % TS, kb = lid / TS;
  const int n_load = n0 + nn;
#if CONV
  // Input coordinates of output position n_load before the kernel offset.
  int base[3];
  qg_conv_base(n_load < N ? n_load : 0, geo, base);
#endif

  float acc[RT][RT];
  for (int i = 0; i < RT; ++i)
    for (int j = 0; j < RT; ++j) acc[i][j] = 0.f;
#if AK != 0 || BK != 0
  barrier(CLK_LOCAL_MEM_FENCE);  // the tables are filled
#endif
  for (int k0 = 0; k0 < K; k0 += TK) {
    for (int r = 0; r < RT; ++r) {
      const int e = lid + r * WG * WG;
      const int mm = e / TK, kk = e % TK;
      const int m = m0 + mm, k = k0 + kk;
      As[kk][mm] = m < M && k < K ? DECODE_A(A[a_off + m * K + k]) : 0.f;
    }
    for (int r = 0; r < RT; ++r) {
      const int kk = kb + r * (WG * WG / TS);
      const int k = k0 + kk;
      float v = 0.f;
      if (n_load < N && k < K) {
#if CONV
        const int idx = qg_im2col_index(k, b_off, base, geo);
        if (idx >= 0) v = DECODE_B(B[idx]);
#else
        v = DECODE_B(B[b_off + k * N + n_load]);
#endif
      }
      Bs[kk][nn] = v;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    // Past K the tiles hold 0; adding 0 * 0 leaves every sum (and the CPU's order) unchanged.
    for (int kk = 0; kk < TK; ++kk) {
      float av[RT], bv[RT];
      for (int i = 0; i < RT; ++i) av[i] = As[kk][ty + i * WG];
      for (int j = 0; j < RT; ++j) bv[j] = Bs[kk][tx + j * WG];
      for (int i = 0; i < RT; ++i)
        for (int j = 0; j < RT; ++j) acc[i][j] += av[i] * bv[j];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  F8EPI_PREP
  for (int i = 0; i < RT; ++i) {
    const int m = m0 + ty + i * WG;
    if (m >= M) continue;
    for (int j = 0; j < RT; ++j) {
      const int n = n0 + tx + j * WG;
      if (n < N) fp8_store(acc[i][j], row_base + m, n, NHWC ? c_off + n * M + m : c_off + m * N + n, f8epi_c, F8EPI_ARGS);
    }
  }
}
