// Einsum over float32 (or half storage: kernels/float_storage.cl) with up to three inputs and
// 16 labels (runtime/backends/einsum_geometry.h numbers them: the output's first). One
// work-item per output element sums the product of the inputs over the summed labels.
typedef struct { int v[16]; } Labels;

__kernel void einsum(__global const store_t* x0, __global const store_t* x1, __global const store_t* x2,
                     __global store_t* y, int total, int nin, int L, int O, Labels size, Labels s0, Labels s1, Labels s2,
                     int sum_numel) {
  const int g = get_global_id(0);
  if (g >= total) return;
  int idx[16];
  int o0 = 0, o1 = 0, o2 = 0;
  for (int l = O - 1, rest = g; l >= 0; --l) {
    const int i = rest % size.v[l];
    rest /= size.v[l];
    o0 += i * s0.v[l];
    o1 += i * s1.v[l];
    o2 += i * s2.v[l];
  }
  for (int l = O; l < L; ++l) idx[l] = 0;
  float acc = 0.0f;
  for (int r = 0; r < sum_numel; ++r) {
    float p = LOADF(x0, o0);
    if (nin > 1) p *= LOADF(x1, o1);
    if (nin > 2) p *= LOADF(x2, o2);
    acc += p;
    for (int l = L - 1; l >= O; --l) {
      o0 += s0.v[l];
      o1 += s1.v[l];
      o2 += s2.v[l];
      if (++idx[l] < size.v[l]) break;
      o0 -= s0.v[l] * size.v[l];
      o1 -= s1.v[l] * size.v[l];
      o2 -= s2.v[l] * size.v[l];
      idx[l] = 0;
    }
  }
  STOREF(y, g, acc);
}
