// Gather along one axis: out[o, j, i] = in[o, ind[j], i] with data viewed as
// [outer, n_axis, inner] and indices flattened to k entries. Negative indices count from the
// end. An index still out of range writes 0 and records itself in the device error flag
// (runtime/backends/opencl/device_errors.h: [0] = node + 1 of the first refusal, [1..2] the
// index), which the executor turns into the error the CPU kernel reports. Built with
// -DT=<element type> -DIDX=int|long.
__kernel void gather(__global const T* in, __global const IDX* ind, __global T* out, int inner, int k,
                     int n_axis, int total, __global int* err, int node) {
  int g = get_global_id(0);
  if (g >= total) return;
  int i = g % inner;
  int t = g / inner;
  int j = t % k;
  int o = t / k;
  const long raw = (long)ind[j];
  long id = raw < 0 ? raw + n_axis : raw;
  if (id >= 0 && id < n_axis) {
    out[g] = in[(o * n_axis + (int)id) * inner + i];
    return;
  }
  out[g] = (T)0;
  if (atomic_cmpxchg(err, 0, node + 1) == 0) {
    err[1] = (int)(raw & 0xffffffffL);
    err[2] = (int)(raw >> 32);
  }
}
