// Pad, every mode in one pass: one work-item per output element maps each coordinate back to
// its source (runtime/backends/movement_layout.h: pad_source_index). mode: 0 constant,
// 1 reflect, 2 edge, 3 wrap; it is uniform over the launch, so the branches do not diverge.
// Built with -DT=<element type>.
typedef struct { int v[8]; } Dims;

__kernel void pad(__global const T* in, __global T* out, __global const T* value, int has_value, int rank,
                  Dims out_dims, Dims in_dims, Dims in_strides, Dims begin, int mode, int total) {
  int g = get_global_id(0);
  if (g >= total) return;
  int rem = g, src = 0, inside = 1;
  for (int d = rank - 1; d >= 0; --d) {
    int o = rem % out_dims.v[d];
    rem /= out_dims.v[d];
    int n = in_dims.v[d];
    int i = o - begin.v[d];
    if (i < 0 || i >= n) {
      if (mode == 0) {
        inside = 0;
        i = 0;
      } else if (mode == 2) {
        i = i < 0 ? 0 : n - 1;
      } else if (mode == 3) {
        i = ((i % n) + n) % n;
      } else if (n == 1) {
        i = 0;
      } else {
        int period = 2 * (n - 1);
        i = ((i % period) + period) % period;
        if (i >= n) i = period - i;
      }
    }
    src += i * in_strides.v[d];
  }
  out[g] = inside ? in[src] : (has_value ? value[0] : (T)0);
}
