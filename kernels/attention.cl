// Fused attention, Y = Softmax(scale * Q K^T + mask) V (runtime/backends/attention_geometry.h),
// flash-attention style: a work-group owns a block of query rows of one (batch, head), one row
// per work-item, and walks the keys in tiles of BLOCK_N that it stages in __local memory; each
// row keeps a running max, denominator and weighted sum of V (online softmax), so the scores
// never reach global memory. Float or half storage (kernels/float_storage.cl), float math.
//
// Build options: DMAX, a power of two >= the head dims D and Dv (a capacity, not the shape: the
// dims come as arguments; tiles and rows are zero-padded to DMAX so every inner loop has a fixed
// trip count and the private arrays can live in registers), BLOCK_N (keys per tile).
// Operands are addressed through element strides over [batch, head, row, col] (int4 x, y, z, w),
// Q, K and V from element offsets offs.x, .y, .z of their buffers (one packed projection output).

__kernel void attention(__global const store_t* q, __global const store_t* k, __global const store_t* v,
                        __global const store_t* mask, __global store_t* y, int heads, int sq, int sk, int d,
                        int dv, float scale, int4 qs, int4 ks, int4 vs, int4 ys, int4 ms, int4 offs,
                        int has_mask, int half_scores) {
  __local float kt[BLOCK_N * DMAX];
  __local float vt[BLOCK_N * DMAX];
  const int lid = get_local_id(0), bm = get_local_size(0);
  const int row = get_group_id(0) * bm + lid;
  const int bh = get_group_id(1);
  const int b = bh / heads, h = bh - b * heads;
  const bool live = row < sq;
  const int qb = offs.x + b * qs.x + h * qs.y + row * qs.z;
  const int kb = offs.y + b * ks.x + h * ks.y, vb = offs.z + b * vs.x + h * vs.y;
  const int mrow = b * ms.x + h * ms.y + row * ms.z;

  // The scale is folded into Q once per row instead of once per score.
  float qv[DMAX], acc[DMAX];
  for (int c = 0; c < DMAX; ++c) {
    qv[c] = live && c < d ? LOADF(q, qb + c * qs.w) * scale : 0.0f;
    acc[c] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;

  for (int j0 = 0; j0 < sk; j0 += BLOCK_N) {
    const int nb = min(BLOCK_N, sk - j0);
    for (int idx = lid; idx < BLOCK_N * DMAX; idx += bm) {
      int jj, c;
      // A transposed K (keys contiguous) is read key-fastest so neighbouring work-items read
      // neighbouring addresses; otherwise head-dim-fastest.
      if (ks.z == 1) {
        c = idx / BLOCK_N;
        jj = idx - c * BLOCK_N;
      } else {
        jj = idx / DMAX;
        c = idx - jj * DMAX;
      }
      kt[jj * DMAX + c] = jj < nb && c < d ? LOADF(k, kb + (j0 + jj) * ks.z + c * ks.w) : 0.0f;
    }
    for (int idx = lid; idx < BLOCK_N * DMAX; idx += bm) {
      const int jj = idx / DMAX, c = idx - jj * DMAX;
      vt[idx] = jj < nb && c < dv ? LOADF(v, vb + (j0 + jj) * vs.z + c * vs.w) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (live) {
      float s[BLOCK_N];
      float mt = -INFINITY;
      for (int jj = 0; jj < BLOCK_N; ++jj) {
        float dot = 0.0f;
        for (int c = 0; c < DMAX; ++c) dot = mad(qv[c], kt[jj * DMAX + c], dot);
        if (has_mask && jj < nb) dot += LOADF(mask, mrow + (j0 + jj) * ms.w);
        if (half_scores) {  // as the separate FP16 Add stores the score (attention_geometry.h)
          ushort hs;
          vstore_half_rte(dot, 0, (__private half*)&hs);
          dot = vload_half(0, (const __private half*)&hs);
        }
        s[jj] = jj < nb ? dot : -INFINITY;
        mt = fmax(mt, s[jj]);
      }
      const float mn = fmax(m, mt);
      // Every score so far -inf: nothing to add yet (and exp(-inf - -inf) would be NaN).
      if (mn != -INFINITY) {
        const float corr = exp(m - mn);
        l *= corr;
        for (int c = 0; c < DMAX; ++c) acc[c] *= corr;
        for (int jj = 0; jj < BLOCK_N; ++jj) {
          const float p = exp(s[jj] - mn);
          l += p;
          for (int c = 0; c < DMAX; ++c) acc[c] = mad(p, vt[jj * DMAX + c], acc[c]);
        }
        m = mn;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (!live) return;
  // l == 0: every score was -inf, which Softmax turns into NaN; no keys at all give zeros
  // (an empty MatMul). A NaN l (NaN or +inf scores) propagates through the division.
  const float none = sk == 0 ? 0.0f : NAN;
  const int yb = b * ys.x + h * ys.y + row * ys.z;
  for (int c = 0; c < dv; ++c) STOREF(y, yb + c * ys.w, l == 0.0f ? none : acc[c] / l);
}
