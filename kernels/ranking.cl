// ArgMax/ArgMin and TopK over float32 (or half storage: kernels/float_storage.cl). Rows of n
// values at stride `inner` along the axis; one work-item per row. A NaN wins ArgMax and ArgMin
// and ranks above every number in TopK; equal values rank by lower index first, as the CPU
// kernels do (runtime/backends/cpu/ranking.cpp).
// Build options: -DLARGEST=1 (ArgMax, TopK largest) or 0.

// a ranks above b.
int above(float a, float b) { return isnan(a) ? !isnan(b) : (!isnan(b) && a > b); }

// (a, ia) comes before (b, ib) in the output order.
int before(float a, int ia, float b, int ib) {
#if LARGEST
  if (above(a, b)) return 1;
#else
  if (above(b, a)) return 1;
#endif
  if (above(a, b) || above(b, a)) return 0;
  return ia < ib;
}

// a beats b in ArgMax (LARGEST) or ArgMin; a NaN beats any number in both.
int wins(float a, float b) {
#if LARGEST
  return above(a, b);
#else
  return isnan(a) ? !isnan(b) : (!isnan(b) && a < b);
#endif
}

__kernel void arg_reduce(__global const store_t* x, __global long* y, int rows, int n, int inner, int last) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int base = (r / inner) * n * inner + r % inner;
  int best = 0;
  float bv = LOADF(x, base);
  for (int j = 1; j < n; ++j) {
    const float v = LOADF(x, base + j * inner);
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
__kernel void topk(__global const store_t* x, __global store_t* values, __global long* indices, int rows, int n,
                   int inner, int k) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int o = r / inner, i = r % inner;
  const int base = o * n * inner + i;
  float pv = 0.0f;
  int pi = -1;
  for (int j = 0; j < k; ++j) {
    int bi = -1;
    float bv = 0.0f;
    for (int e = 0; e < n; ++e) {
      const float v = LOADF(x, base + e * inner);
      if (pi >= 0 && !before(pv, pi, v, e)) continue;  // already output
      if (bi < 0 || before(v, e, bv, bi)) {
        bi = e;
        bv = v;
      }
    }
    const int dst = (o * k + j) * inner + i;
    STOREF(values, dst, bv);
    indices[dst] = bi;
    pv = bv;
    pi = bi;
  }
}
