// Fused attention on tensor cores, Y = Softmax(scale * Q K^T + mask) V (runtime/backends/
// attention_geometry.h), FP16 storage, FP32 accumulation and softmax: FlashAttention-2's
// schedule with kernels/mma_ops.cl's mma.sync m16n8k16 (emulated where there is no PTX).
// A work-group of 4 warps owns 64 query rows of one (batch, head), each warp 16 of them; it walks
// the keys in blocks of FA_BK, staging K and V in __local memory. A warp's scores S (16 x FA_BK)
// stay in its mma accumulators, the online softmax (running max m and denominator l per row)
// works on them in registers (a row is spread over the 4 lanes of a quad: two butterfly
// shuffles reduce it), and the probabilities, rounded to half, feed the P V products directly:
// an accumulator fragment of m16n8 is the A fragment of m16n8k16 (PTX ISA's fragment layouts).
//
// Build options: FA_D (head dim of Q/K and of V: 16, 32, 64 or 128), FA_BK (keys per block, a
// multiple of 16; the host passes 64), FA_KT (K arrives transposed, [d][key], keys contiguous), FA_VEC_Q / FA_VEC_K / FA_VEC_V
// (that operand's contiguous rows start 16-byte aligned: copied by cp.async; else gathered),
// FA_STAGES (2: K and V of the next block are copied while this one is computed, and Q's copy
// overlaps the first block's, in __local of Q plus two blocks; 1: one block, Q's bytes reused;
// MMA_PENDING must be FA_STAGES - 1), FA_VEC_Y (Y's rows are contiguous with even strides:
// two columns per 32-bit store), FA_MASK (a mask is added to the scores), FA_MASK_ROWS (it varies
// over query rows; else one row serves them all, as BERT's padding mask does), FA_HALF_SCORES
// (the half_scores attribute), FA_QOUT (Y is also written to yq quantized per tensor, from its
// stored half values, as a QuantizeLinear reading Y would: runtime/ops/quantized_output.h; with
// kernels/quantize_value.cl's options and preludes).
// Operands are addressed through element strides over [batch, head, row, col] (int4 x, y, z, w),
// Q, K and V from element offsets offs.x, .y, .z of their buffers (one packed projection output).
// Every per-element load of the score loop is unconditional (indices clamped into the tensor,
// what lies past it discarded by selects): a load behind a branch is issued only after the
// previous element's arithmetic, which made the mask's 32 loads a block a chain of latencies.

#define FA_BQ 64
#define FA_WARPS 4
#define MMA_THREADS (FA_WARPS * 32)
#define FA_ROWB (FA_D * 2)  // bytes of a [row][d] tile row
// __local layout: Q (loaded into registers first), then FA_STAGES blocks of K and V (with one
// stage they start at 0, reusing Q's bytes).
#define FA_Q_BYTES (FA_BQ * FA_ROWB)
#define FA_K_BYTES (FA_BK * FA_ROWB)
#define FA_KV_BYTES (2 * FA_K_BYTES)
#if FA_STAGES == 2
#define FA_KV0 FA_Q_BYTES
#define FA_SMEM (FA_Q_BYTES + 2 * FA_KV_BYTES)
#else
#define FA_KV0 0
#define FA_SMEM (FA_Q_BYTES > FA_KV_BYTES ? FA_Q_BYTES : FA_KV_BYTES)
#endif
#define FA_NT (FA_BK / 8)   // score tiles of 8 keys per warp row block
#define FA_DT (FA_D / 8)    // output tiles of 8 columns
#define FA_KS (FA_D / 16)   // k-steps over the head dim
#define FA_LOG2E 1.4426950408889634f

// Byte `byte` of row `row` in a tile of `rowb`-byte rows (a power of two), XOR-swizzled in 16-byte
// chunks so that the 8 rows one ldmatrix reads land in distinct bank groups.
#define FA_SWZ(row, byte, rowb)                                                                          \
  ((row) * (rowb) + (((((byte) >> 4) ^ (((row) / ((rowb) >= 128 ? 1 : 128 / (rowb))) % ((rowb) / 16 < 8 ? (rowb) / 16 : 8)))) << 4) + ((byte) & 15))

#if KILN_PTX
#define FA_SHFL(v, m) warp_shfl_xor(v, m)  // kernels/warp_shuffle.cl
// Two floats rounded to half and packed: lo in bits 0..15.
inline uint fa_pack_half2(float lo, float hi) {
  uint r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
#else
inline float fa_shfl_xor_emu(float v, int mask, __local uint* xch) {
  const uint lane = get_local_id(0) % 32;
  xch[lane] = as_uint(v);
  barrier(CLK_LOCAL_MEM_FENCE);
  const float r = as_float(xch[lane ^ mask]);
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}
#define FA_SHFL(v, m) fa_shfl_xor_emu(v, m, xch)
inline uint fa_half_bits(float x) {
  ushort h;
  vstore_half_rte(x, 0, (__private half*)&h);
  return h;
}
inline uint fa_pack_half2(float lo, float hi) { return fa_half_bits(lo) | (fa_half_bits(hi) << 16); }
#endif

// A float rounded to half and back (the half_scores attribute).
#if KILN_PTX
inline float fa_round_half(float x) {
  float r;
  asm("{ .reg .b16 t; cvt.rn.f16.f32 t, %1; cvt.f32.f16 %0, t; }" : "=f"(r) : "f"(x));
  return r;
}
#else
inline float fa_round_half(float x) {
  ushort h;
  vstore_half_rte(x, 0, (__private half*)&h);
  return vload_half(0, (const __private half*)&h);
}
#endif

// Stages a tile of `rows` x FA_D halfs, row r (< nrows valid, the rest zero) at element offset
// base + r * rs of src and column c at + c * cs, as [row][d] swizzled rows at `off` of smem.
// `vec`: cs == 1 and every row 16-byte aligned (cp.async in 8-element chunks).
inline void fa_stage_rows(__local uchar* smem, uint off, __global const ushort* src, long base, int rs, int cs,
                          int rows, int nrows, int vec) {
  const int tid = get_local_id(0);
  if (vec) {
    for (int c = tid; c < rows * (FA_D / 8); c += MMA_THREADS) {
      const int r = c / (FA_D / 8), ch = c % (FA_D / 8);
      const bool in = r < nrows;
      cp_async16(smem, off + FA_SWZ(r, ch * 16, FA_ROWB), (__global const uchar*)(src + (in ? base + (long)r * rs + ch * 8 : 0)),
                 in ? 16u : 0u);
    }
  } else {
    for (int e = tid; e < rows * FA_D; e += MMA_THREADS) {
      const int r = e / FA_D, c = e % FA_D;
      const ushort v = r < nrows ? src[base + (long)r * rs + (long)c * cs] : (ushort)0;
      *(__local ushort*)(smem + off + FA_SWZ(r, c * 2, FA_ROWB)) = v;
    }
  }
}

#if FA_KT
// K transposed ([d][key]): staged as FA_D rows of FA_BK keys.
#define FA_KROWB (FA_BK * 2)
inline void fa_stage_kt(__local uchar* smem, uint off, __global const ushort* src, long base, int ks_key, int ks_d,
                        int nkeys, int vec) {
  const int tid = get_local_id(0);
  if (vec) {
    for (int c = tid; c < FA_D * (FA_BK / 8); c += MMA_THREADS) {
      const int d = c / (FA_BK / 8), ch = c % (FA_BK / 8);
      const int valid = clamp(nkeys - ch * 8, 0, 8);
      cp_async16(smem, off + FA_SWZ(d, ch * 16, FA_KROWB),
                 (__global const uchar*)(src + (valid ? base + (long)d * ks_d + ch * 8 : 0)), (uint)valid * 2u);
    }
  } else {
    for (int e = tid; e < FA_D * FA_BK; e += MMA_THREADS) {
      const int d = e / FA_BK, j = e % FA_BK;
      const ushort v = j < nkeys ? src[base + (long)j * ks_key + (long)d * ks_d] : (ushort)0;
      *(__local ushort*)(smem + off + FA_SWZ(d, j * 2, FA_KROWB)) = v;
    }
  }
}
#endif

// Stages the K and V rows of the key block starting at j0 (nk of them valid) at `off`.
inline void fa_stage_kv(__local uchar* smem, uint off, __global const ushort* k, __global const ushort* v, long kb,
                        long vb, int4 ks, int4 vs, int j0, int nk) {
#if FA_KT
  fa_stage_kt(smem, off, k, kb + (long)j0 * ks.z, ks.z, ks.w, nk, FA_VEC_K);
#else
  fa_stage_rows(smem, off, k, kb + (long)j0 * ks.z, ks.z, ks.w, FA_BK, nk, FA_VEC_K);
#endif
  fa_stage_rows(smem, off + FA_K_BYTES, v, vb + (long)j0 * vs.z, vs.z, vs.w, FA_BK, nk, FA_VEC_V);
}

__kernel __attribute__((reqd_work_group_size(MMA_THREADS, 1, 1))) void attention_mma(
    __global const ushort* q, __global const ushort* k, __global const ushort* v, __global const half* mask,
    __global half* y, int heads, int sq, int sk, float scale, int4 qs, int4 ks, int4 vs, int4 ys, int4 ms,
    int4 offs
#if FA_QOUT
    , __global QT* yq, __global const float* qscale, __global const QT* qzero, int saturate
#endif
) {
  __local uchar smem[FA_SMEM] __attribute__((aligned(16)));
  MMA_XCH_DECL
  const int tid = get_local_id(0), lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, t = lane % 4;
  const int q0 = get_group_id(0) * FA_BQ;
  const int bh = get_group_id(1), b = bh / heads, h = bh - b * heads;
  const long qb = offs.x + (long)b * qs.x + (long)h * qs.y + (long)q0 * qs.z;
  const long kb = offs.y + (long)b * ks.x + (long)h * ks.y, vb = offs.z + (long)b * vs.x + (long)h * vs.y;
#if FA_MASK
  const long mb = (long)b * ms.x + (long)h * ms.y;
#endif
  const int r0 = warp * 16;  // this warp's first row within the block

  // Q's fragments, kept in registers for every key block.
  fa_stage_rows(smem, 0, q, qb, qs.z, qs.w, FA_BQ, min(FA_BQ, sq - q0), FA_VEC_Q);
#if FA_STAGES == 2
  cp_async_commit();
  fa_stage_kv(smem, FA_KV0, k, v, kb, vb, ks, vs, 0, min(FA_BK, sk));
  cp_async_commit();
  cp_async_wait_pending();  // Q's copy has landed; the first block's may still be on its way
#else
  cp_async_wait_all();
#endif
  barrier(CLK_LOCAL_MEM_FENCE);
  uint qf[FA_KS][4];
  for (int kk = 0; kk < FA_KS; ++kk) {
    const int j = lane / 8;
    ldsm_x4(smem, FA_SWZ(r0 + (j % 2) * 8 + lane % 8, (kk * 16 + (j / 2) * 8) * 2, FA_ROWB), qf[kk]);
  }
  barrier(CLK_LOCAL_MEM_FENCE);

  float o[FA_DT][4];
  for (int i = 0; i < FA_DT; ++i)
    for (int e = 0; e < 4; ++e) o[i][e] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
  const int row_lo = q0 + r0 + g;  // rows of this lane's accumulators: row_lo and row_lo + 8

  for (int j0 = 0, it = 0; j0 < sk; j0 += FA_BK, ++it) {
#if FA_STAGES == 2
    const uint kv = FA_KV0 + (it % 2) * FA_KV_BYTES;
    if (j0 + FA_BK < sk) {
      // The next block goes to the other stage, which every warp left at the last barrier.
      fa_stage_kv(smem, FA_KV0 + ((it + 1) % 2) * FA_KV_BYTES, k, v, kb, vb, ks, vs, j0 + FA_BK,
                  min(FA_BK, sk - j0 - FA_BK));
      cp_async_commit();
      cp_async_wait_pending();
    } else {
      cp_async_wait_all();
    }
#else
    const uint kv = FA_KV0;
    fa_stage_kv(smem, kv, k, v, kb, vb, ks, vs, j0, min(FA_BK, sk - j0));
    cp_async_wait_all();
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

#if FA_MASK && !FA_MASK_ROWS
    // This lane's mask values for the block's keys (one row serves every query row), loaded
    // before the products so that their latency hides behind them.
    float mk[FA_NT][2];
    for (int i = 0; i < FA_NT; ++i)
      for (int c = 0; c < 2; ++c) mk[i][c] = vload_half(mb + (long)min(j0 + i * 8 + 2 * t + c, sk - 1) * ms.w, mask);
#endif
    // S = Q K^T for this warp's 16 rows and the block's keys.
    float s[FA_NT][4];
    for (int i = 0; i < FA_NT; ++i)
      for (int e = 0; e < 4; ++e) s[i][e] = 0.0f;
    for (int kk = 0; kk < FA_KS; ++kk)
      for (int np = 0; np < FA_NT / 2; ++np) {
        uint r[4];
        const int j = lane / 8;
#if FA_KT
        // [d][key] rows: matrix j holds d (kk*16 + (j%2)*8 ..) x keys (np*16 + (j/2)*8 ..).
        ldsm_x4_trans(smem, kv + FA_SWZ(kk * 16 + (j % 2) * 8 + lane % 8, (np * 16 + (j / 2) * 8) * 2, FA_KROWB), r);
#else
        // [key][d] rows: matrix j holds keys (np*16 + (j/2)*8 ..) x d (kk*16 + (j%2)*8 ..).
        ldsm_x4(smem, kv + FA_SWZ(np * 16 + (j / 2) * 8 + lane % 8, (kk * 16 + (j % 2) * 8) * 2, FA_ROWB), r);
#endif
        const uint b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma_f16(s[2 * np], qf[kk], b0);
        mma_f16(s[2 * np + 1], qf[kk], b1);
      }

    // Scores in log2 units: scale, mask, the half rounding FP16 graphs store them with, and -inf
    // past the last key.
    float mx[2] = {-INFINITY, -INFINITY};
    for (int i = 0; i < FA_NT; ++i)
      for (int e = 0; e < 4; ++e) {
        const int key = j0 + i * 8 + 2 * t + (e % 2), row = row_lo + 8 * (e / 2);
        float x = s[i][e] * scale;
#if FA_MASK && FA_MASK_ROWS
        x += vload_half(mb + (long)min(row, sq - 1) * ms.z + (long)min(key, sk - 1) * ms.w, mask);
#elif FA_MASK
        x += mk[i][e % 2];
#endif
#if FA_HALF_SCORES
        x = fa_round_half(x);
#endif
        x = key < sk ? x * FA_LOG2E : -INFINITY;
        s[i][e] = x;
        mx[e / 2] = fmax(mx[e / 2], x);
      }
    float alpha[2];
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmax(mx[r], FA_SHFL(mx[r], 1));
      mx[r] = fmax(mx[r], FA_SHFL(mx[r], 2));
      const float m_new = fmax(m_run[r], mx[r]);
      // A row with no finite score yet subtracts 0: its probabilities stay 0 (not NaN) until one comes.
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      alpha[r] = exp2(m_run[r] - m_use);
      m_run[r] = m_new;
      mx[r] = m_use;
    }
    float ls[2] = {0.0f, 0.0f};
    for (int i = 0; i < FA_NT; ++i)
      for (int e = 0; e < 4; ++e) {
        s[i][e] = exp2(s[i][e] - mx[e / 2]);
        ls[e / 2] += s[i][e];
      }
    for (int r = 0; r < 2; ++r) l_run[r] = l_run[r] * alpha[r] + ls[r];
    for (int i = 0; i < FA_DT; ++i)
      for (int e = 0; e < 4; ++e) o[i][e] *= alpha[e / 2];

    // O += P V: the score tiles 2kk and 2kk+1 are the A fragment of keys kk*16 .. kk*16+15.
    for (int kk = 0; kk < FA_BK / 16; ++kk) {
      const uint a[4] = {fa_pack_half2(s[2 * kk][0], s[2 * kk][1]), fa_pack_half2(s[2 * kk][2], s[2 * kk][3]),
                         fa_pack_half2(s[2 * kk + 1][0], s[2 * kk + 1][1]), fa_pack_half2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      for (int np = 0; np < FA_DT / 2; ++np) {
        uint r[4];
        const int j = lane / 8;
        // V's [key][d] rows as B = [k][n]: matrix j holds keys (kk*16 + (j%2)*8 ..) x d (np*16 + (j/2)*8 ..).
        ldsm_x4_trans(smem, kv + FA_K_BYTES + FA_SWZ(kk * 16 + (j % 2) * 8 + lane % 8, (np * 16 + (j / 2) * 8) * 2, FA_ROWB), r);
        const uint b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma_f16(o[2 * np], a, b0);
        mma_f16(o[2 * np + 1], a, b1);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  for (int r = 0; r < 2; ++r) {
    l_run[r] += FA_SHFL(l_run[r], 1);
    l_run[r] += FA_SHFL(l_run[r], 2);
  }
#if FA_QOUT
  const float qs1 = qscale[0], qinv = 1.0f / qs1, qz = (float)qzero[0];
#endif
#if FA_VEC_Y
  for (int i = 0; i < FA_DT; ++i)
    for (int hr = 0; hr < 2; ++hr) {
      const int row = row_lo + 8 * hr, col = i * 8 + 2 * t;
      if (row < sq) {
        const long at = (long)b * ys.x + (long)h * ys.y + (long)row * ys.z + col;
        const uint pair = fa_pack_half2(o[i][2 * hr] / l_run[hr], o[i][2 * hr + 1] / l_run[hr]);
        ((__global uint*)y)[at / 2] = pair;
#if FA_QOUT
        const float lo = vload_half(0, (const __private half*)&pair), hi = vload_half(1, (const __private half*)&pair);
        yq[at] = quantize_one(lo, qs1, qinv, qz, saturate);
        yq[at + 1] = quantize_one(hi, qs1, qinv, qz, saturate);
#endif
      }
    }
#else
  for (int i = 0; i < FA_DT; ++i)
    for (int e = 0; e < 4; ++e) {
      const int row = row_lo + 8 * (e / 2), col = i * 8 + 2 * t + (e % 2);
      if (row < sq) {
        const long at = (long)b * ys.x + (long)h * ys.y + (long)row * ys.z + (long)col * ys.w;
        const float val = o[i][e] / l_run[e / 2];
        vstore_half_rte(val, at, y);
#if FA_QOUT
        ushort stored;
        vstore_half_rte(val, 0, (__private half*)&stored);
        yq[at] = quantize_one(vload_half(0, (const __private half*)&stored), qs1, qinv, qz, saturate);
#endif
      }
    }
#endif
}
