// Gather along one axis: out[o, j, i] = in[o, ind[j], i] with data viewed as
// [outer, n_axis, inner] and indices flattened to k entries. Negative indices count from the
// end. An index still out of range writes 0 (a device kernel cannot fail; the CPU kernel and
// the compiler, for constant indices, report it). Built with -DT=<element type> -DIDX=int|long.
__kernel void gather(__global const T* in, __global const IDX* ind, __global T* out, int inner, int k,
                     int n_axis, int total) {
  int g = get_global_id(0);
  if (g >= total) return;
  int i = g % inner;
  int t = g / inner;
  int j = t % k;
  int o = t / k;
  long id = (long)ind[j];
  if (id < 0) id += n_axis;
  out[g] = (id >= 0 && id < n_axis) ? in[(o * n_axis + (int)id) * inner + i] : (T)0;
}
