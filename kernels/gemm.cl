// kiln's own GEMM (FP32, or FP16 storage with FP32 math: kernels/float_storage.cl) with the fused linear epilogue (runtime/ops/linear_epilogue.h),
// used where CLBlast's per-process kernel compilation and launch overheads outweigh its speed
// (small and medium matrices, grouped convolutions), plus the epilogue kernel run after a
// CLBlast GEMM.

// KILN_EPILOGUE_PARAMS and kiln_epilogue come from kernels/epilogue_float.cl.

// The tile: TS x TS outputs per work-group of WG x WG items, each computing WPT x WPT of them
// (rows ly + WG r, columns lx + WG c); K steps by TK. -D TS= -D WPT= choose it (the "tiled"
// variant's parameters; default 64 and 4).
#ifndef TS
#define TS 64
#endif
#ifndef WPT
#define WPT 4
#endif
#define TK 16
#define WG (TS / WPT)
#define LOADS (TS * TK / (WG * WG))  // elements of each operand tile an item loads

// C[b] = epilogue(alpha * op(A[b]) * op(B[b])), WG x WG work-items each computing a WPT x WPT block
// of a TS x TS tile. Batch index b (global dim 2) is split over `nbd` batch dims of shape `bshape`;
// A and B offsets use per-dim element strides (0 where an operand broadcasts), C offsets are
// b * c_bstride. Global size: (ceil(N/TS)*WG, ceil(M/TS)*WG, batches).
__kernel __attribute__((reqd_work_group_size(WG, WG, 1)))
void gemm_tiled(int M, int N, int K, float alpha,
                __global const store_t* A, int a_off, int lda, int ta,
                __global const store_t* B, int b_off, int ldb, int tb,
                __global store_t* C, int c_off, int ldc, int c_bstride,
                int nbd, int8 bshape, int8 astr, int8 bstr,
                KILN_EPILOGUE_PARAMS) {
  __local float As[TK][TS];
  __local float Bs[TK][TS];
  const int lx = get_local_id(0), ly = get_local_id(1);
  const int lid = ly * WG + lx;
  const int tile_n = get_group_id(0) * TS, tile_m = get_group_id(1) * TS;
  const int batch = get_global_id(2);
  int ao = a_off, bo = b_off;
  {
    int rem = batch;
    int sh[8] = {bshape.s0, bshape.s1, bshape.s2, bshape.s3, bshape.s4, bshape.s5, bshape.s6, bshape.s7};
    int as_[8] = {astr.s0, astr.s1, astr.s2, astr.s3, astr.s4, astr.s5, astr.s6, astr.s7};
    int bs_[8] = {bstr.s0, bstr.s1, bstr.s2, bstr.s3, bstr.s4, bstr.s5, bstr.s6, bstr.s7};
    for (int d = nbd - 1; d >= 0; --d) {
      const int idx = rem % sh[d];
      rem /= sh[d];
      ao += idx * as_[d];
      bo += idx * bs_[d];
    }
  }
  float acc[WPT][WPT];
  for (int r = 0; r < WPT; ++r)
    for (int c = 0; c < WPT; ++c) acc[r][c] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += TK) {
    for (int l = 0; l < LOADS; ++l) {
      const int idx = lid + l * WG * WG;
      int mm, kk;
      if (ta) { mm = idx % TS; kk = idx / TS; } else { kk = idx % TK; mm = idx / TK; }
      const int m = tile_m + mm, k = k0 + kk;
      float v = 0.0f;
      if (m < M && k < K) v = LOADF(A, ao + (ta ? k * lda + m : m * lda + k));
      As[kk][mm] = v;
      int nn;
      if (tb) { kk = idx % TK; nn = idx / TK; } else { nn = idx % TS; kk = idx / TS; }
      const int n = tile_n + nn, k2 = k0 + kk;
      float w = 0.0f;
      if (n < N && k2 < K) w = LOADF(B, bo + (tb ? n * ldb + k2 : k2 * ldb + n));
      Bs[kk][nn] = w;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int kk = 0; kk < TK; ++kk) {
      float a[WPT], b[WPT];
      for (int r = 0; r < WPT; ++r) a[r] = As[kk][ly + WG * r];
      for (int c = 0; c < WPT; ++c) b[c] = Bs[kk][lx + WG * c];
      for (int r = 0; r < WPT; ++r)
        for (int c = 0; c < WPT; ++c) acc[r][c] = fma(a[r], b[c], acc[r][c]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  for (int r = 0; r < WPT; ++r) {
    const int m = tile_m + ly + WG * r;
    if (m >= M) continue;
    for (int c = 0; c < WPT; ++c) {
      const int n = tile_n + lx + WG * c;
      if (n >= N) continue;
      const long cidx = (long)batch * c_bstride + (long)m * ldc + n;
      STOREF(C, c_off + cidx,
             kiln_epilogue(alpha * acc[r][c], batch, m, n, cidx, beta, has_bias, bias, bias_off, bias_rs, bias_cs,
                           bias_bstride, bias_bmod, res, res_off, res_mode, act, act_a, act_b));
    }
  }
}

// In place on C[b] (M x N, row stride ldc, batch stride c_bstride): the epilogue after a
// CLBlast GEMM (which already applied alpha). Global size: (N, M, batches).
__kernel void gemm_epilogue(int M, int N, __global store_t* C, int c_off, int ldc, int c_bstride,
                            KILN_EPILOGUE_PARAMS) {
  const int j = get_global_id(0), i = get_global_id(1), batch = get_global_id(2);
  if (i >= M || j >= N) return;
  const long cidx = (long)batch * c_bstride + (long)i * ldc + j;
  STOREF(C, c_off + cidx,
         kiln_epilogue(LOADF(C, c_off + cidx), batch, i, j, cidx, beta, has_bias, bias, bias_off, bias_rs, bias_cs,
                       bias_bstride, bias_bmod, res, res_off, res_mode, act, act_a, act_b));
}

// The epilogue of a half-storage GEMM that CLBlast's SGEMM computed into the float buffer
// Cf (laid out like C): C = half(epilogue(Cf)). Global size: (N, M, batches).
__kernel void gemm_epilogue_from_float(int M, int N, __global const float* Cf, __global store_t* C, int c_off,
                                       int ldc, int c_bstride, KILN_EPILOGUE_PARAMS) {
  const int j = get_global_id(0), i = get_global_id(1), batch = get_global_id(2);
  if (i >= M || j >= N) return;
  const long cidx = (long)batch * c_bstride + (long)i * ldc + j;
  STOREF(C, c_off + cidx,
         kiln_epilogue(Cf[c_off + cidx], batch, i, j, cidx, beta, has_bias, bias, bias_off, bias_rs, bias_cs,
                       bias_bstride, bias_bmod, res, res_off, res_mode, act, act_a, act_b));
}

// Widens n halves to float (the half-storage operands of a CLBlast SGEMM).
__kernel void widen_half(__global const store_t* x, __global float* y, int n) {
  const int i = get_global_id(0);
  if (i < n) y[i] = LOADF(x, i);
}
