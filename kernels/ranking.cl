// ArgMax/ArgMin and TopK over float32 (or half storage: kernels/float_storage.cl) or, built
// with -DVT=int|long, int32/int64. Rows of n
// values at stride `inner` along the axis; one work-item per row. A NaN wins ArgMax and ArgMin
// and ranks above every number in TopK; equal values rank by lower index first, as the CPU
// kernels do (runtime/backends/cpu/ranking.cpp).
// Build options: -DLARGEST=1 (ArgMax, TopK largest) or 0.
#ifdef VT
typedef VT val_t;
#define IN_T VT
#define LOADV(p, i) ((p)[i])
#define STOREV(p, i, v) ((p)[i] = (v))
#define ISNAN(v) 0
#else
typedef float val_t;
#define IN_T store_t
#define LOADV(p, i) LOADF(p, i)
#define STOREV(p, i, v) STOREF(p, i, v)
#define ISNAN(v) isnan(v)
#endif

// a ranks above b.
int above(val_t a, val_t b) { return ISNAN(a) ? !ISNAN(b) : (!ISNAN(b) && a > b); }

// (a, ia) comes before (b, ib) in the output order.
int before(val_t a, int ia, val_t b, int ib) {
#if LARGEST
  if (above(a, b)) return 1;
#else
  if (above(b, a)) return 1;
#endif
  if (above(a, b) || above(b, a)) return 0;
  return ia < ib;
}

// a beats b in ArgMax (LARGEST) or ArgMin; a NaN beats any number in both.
int wins(val_t a, val_t b) {
#if LARGEST
  return above(a, b);
#else
  return ISNAN(a) ? !ISNAN(b) : (!ISNAN(b) && a < b);
#endif
}

__kernel void arg_reduce(__global const IN_T* x, __global long* y, int rows, int n, int inner, int last) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int base = (r / inner) * n * inner + r % inner;
  int best = 0;
  val_t bv = LOADV(x, base);
  for (int j = 1; j < n; ++j) {
    const val_t v = LOADV(x, base + j * inner);
    const int tie = !wins(v, bv) && !wins(bv, v);
    if (wins(v, bv) || (last && tie)) {
      best = j;
      bv = v;
    }
  }
  y[r] = best;
}

// Selection: output j is the element that comes first among those after output j - 1 in the
// order (O(k n) per row, no scratch memory).
__kernel void topk(__global const IN_T* x, __global IN_T* values, __global long* indices, int rows, int n,
                   int inner, int k) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int o = r / inner, i = r % inner;
  const int base = o * n * inner + i;
  val_t pv = 0;
  int pi = -1;
  for (int j = 0; j < k; ++j) {
    int bi = -1;
    val_t bv = 0;
    for (int e = 0; e < n; ++e) {
      const val_t v = LOADV(x, base + e * inner);
      if (pi >= 0 && !before(pv, pi, v, e)) continue;  // already output
      if (bi < 0 || before(v, e, bv, bi)) {
        bi = e;
        bv = v;
      }
    }
    const int dst = (o * k + j) * inner + i;
    STOREV(values, dst, bv);
    indices[dst] = bi;
    pv = bv;
    pi = bi;
  }
}
