// Convolution kernels (FP32 or FP16 storage: kernels/float_storage.cl) for up to 3 spatial dims (lower ranks are padded with size-1 dims by the
// host): im2col for the GEMM path, and direct kernels with the fused epilogue for depthwise /
// small convolutions and for ConvTranspose. Shapes come as int8 vectors, entries 0..2 used:
// in, out (spatial sizes), ks (kernel), st (strides), dl (dilations), pb (pads at the start).

// kiln_act (the fused activation) comes from kernels/linear_activation.cl.

// col[c * ksize + kr][o] for one image: the input value kernel tap kr of channel c sees at
// output position o (0 in the padding). Global size: (out positions, channels * ksize).
// -DKILN_COL_FLOAT: float columns from half input (the FP16 GEMM then runs as a widened SGEMM).
#ifdef KILN_COL_FLOAT
#define col_t float
#define STORECOL(p, i, v) ((p)[i] = (v))
#else
#define col_t store_t
#define STORECOL(p, i, v) STOREF(p, i, v)
#endif
__kernel void im2col(__global const store_t* x, int x_off, __global col_t* col,
                     int8 in, int8 out, int8 ks, int8 st, int8 dl, int8 pb) {
  const int o = get_global_id(0), row = get_global_id(1);
  const int osz = out.s0 * out.s1 * out.s2;
  if (o >= osz) return;
  const int ksize = ks.s0 * ks.s1 * ks.s2;
  const int c = row / ksize, kr = row % ksize;
  const int k2 = kr % ks.s2, k1 = (kr / ks.s2) % ks.s1, k0 = kr / (ks.s2 * ks.s1);
  const int o2 = o % out.s2, o1 = (o / out.s2) % out.s1, o0 = o / (out.s2 * out.s1);
  const int i0 = o0 * st.s0 - pb.s0 + k0 * dl.s0;
  const int i1 = o1 * st.s1 - pb.s1 + k1 * dl.s1;
  const int i2 = o2 * st.s2 - pb.s2 + k2 * dl.s2;
  float v = 0.0f;
  if (i0 >= 0 && i0 < in.s0 && i1 >= 0 && i1 < in.s1 && i2 >= 0 && i2 < in.s2)
    v = LOADF(x, x_off + ((c * in.s0 + i0) * in.s1 + i1) * in.s2 + i2);
  STORECOL(col, (long)row * osz + o, v);
}

// y[n][m][o] = act(bias[m] + sum over the group's channels and taps + residual), one work-item
// per output. Global size: (out positions, M, N). -DKILN_NHWC: a channels-last convolution
// (runtime/ops/channels_last.h: x [N][in...][C], w [M][ks...][C/group], y and the residual
// [N][out...][M]).
#ifdef KILN_NHWC
#define X_AT(n, ch, sp) (((long)(n) * isz + (sp)) * C + (ch))
#define W_AT(m, c, tap) (((long)(m) * ksz + (tap)) * Cg + (c))
#define Y_AT(n, m, o) (((long)(n) * osz + (o)) * M + (m))
#else
#define X_AT(n, ch, sp) (((long)(n) * C + (ch)) * isz + (sp))
#define W_AT(m, c, tap) (((long)(m) * Cg + (c)) * ksz + (tap))
#define Y_AT(n, m, o) (((long)(n) * M + (m)) * osz + (o))
#endif
__kernel void conv_direct(__global const store_t* x, __global const store_t* w, int has_bias,
                          __global const store_t* bias, __global store_t* y, int C, int M, int group,
                          int8 in, int8 out, int8 ks, int8 st, int8 dl, int8 pb,
                          __global const store_t* res, int res_mode, int act, float act_a, float act_b) {
  const int o = get_global_id(0), m = get_global_id(1), n = get_global_id(2);
  const int osz = out.s0 * out.s1 * out.s2;
  if (o >= osz) return;
  const int isz = in.s0 * in.s1 * in.s2, ksz = ks.s0 * ks.s1 * ks.s2;
  const int Cg = C / group, Mg = M / group, g = m / Mg;
  const int o2 = o % out.s2, o1 = (o / out.s2) % out.s1, o0 = o / (out.s2 * out.s1);
  const int b0 = o0 * st.s0 - pb.s0, b1 = o1 * st.s1 - pb.s1, b2 = o2 * st.s2 - pb.s2;
  float acc = 0.0f;
  for (int c = 0; c < Cg; ++c) {
    for (int k0 = 0; k0 < ks.s0; ++k0) {
      const int i0 = b0 + k0 * dl.s0;
      if (i0 < 0 || i0 >= in.s0) continue;
      for (int k1 = 0; k1 < ks.s1; ++k1) {
        const int i1 = b1 + k1 * dl.s1;
        if (i1 < 0 || i1 >= in.s1) continue;
        const int sr = (i0 * in.s1 + i1) * in.s2, tr = (k0 * ks.s1 + k1) * ks.s2;
        for (int k2 = 0; k2 < ks.s2; ++k2) {
          const int i2 = b2 + k2 * dl.s2;
          if (i2 >= 0 && i2 < in.s2)
            acc = fma(LOADF(x, X_AT(n, g * Cg + c, sr + i2)), LOADF(w, W_AT(m, c, tr + k2)), acc);
        }
      }
    }
  }
  if (has_bias) acc += LOADF(bias, m);
  const long yi = Y_AT(n, m, o);
  if (res_mode == 1) acc += LOADF(res, yi);
  acc = kiln_act(act, acc, act_a, act_b);
  if (res_mode == 2) acc += LOADF(res, yi);
  STOREF(y, yi, acc);
}

// ConvTranspose in gather form: each output sums the inputs whose scattered taps land on it
// (in = (out + pad - k * dilation) / stride when divisible). W is [C][M/group][ks...].
// Global size: (out positions, M, N).
__kernel void conv_transpose_direct(__global const store_t* x, __global const store_t* w, int has_bias,
                                    __global const store_t* bias, __global store_t* y, int C, int M, int group,
                                    int8 in, int8 out, int8 ks, int8 st, int8 dl, int8 pb,
                                    __global const store_t* res, int res_mode, int act, float act_a,
                                    float act_b) {
  const int o = get_global_id(0), m = get_global_id(1), n = get_global_id(2);
  const int osz = out.s0 * out.s1 * out.s2;
  if (o >= osz) return;
  const int isz = in.s0 * in.s1 * in.s2;
  const int ksz = ks.s0 * ks.s1 * ks.s2;
  const int Cg = C / group, Mg = M / group, g = m / Mg, mg = m % Mg;
  const int o2 = o % out.s2, o1 = (o / out.s2) % out.s1, o0 = o / (out.s2 * out.s1);
  float acc = 0.0f;
  for (int k0 = 0; k0 < ks.s0; ++k0) {
    const int t0 = o0 + pb.s0 - k0 * dl.s0;
    if (t0 < 0 || t0 % st.s0) continue;
    const int i0 = t0 / st.s0;
    if (i0 >= in.s0) continue;
    for (int k1 = 0; k1 < ks.s1; ++k1) {
      const int t1 = o1 + pb.s1 - k1 * dl.s1;
      if (t1 < 0 || t1 % st.s1) continue;
      const int i1 = t1 / st.s1;
      if (i1 >= in.s1) continue;
      for (int k2 = 0; k2 < ks.s2; ++k2) {
        const int t2 = o2 + pb.s2 - k2 * dl.s2;
        if (t2 < 0 || t2 % st.s2) continue;
        const int i2 = t2 / st.s2;
        if (i2 >= in.s2) continue;
        const int ipos = (i0 * in.s1 + i1) * in.s2 + i2;
        const int kpos = (k0 * ks.s1 + k1) * ks.s2 + k2;
        const long xp = ((long)n * C + g * Cg) * isz + ipos;
        const long wp = ((long)(g * Cg) * Mg + mg) * ksz + kpos;
        for (int c = 0; c < Cg; ++c) acc = fma(LOADF(x, xp + (long)c * isz), LOADF(w, wp + (long)c * Mg * ksz), acc);
      }
    }
  }
  if (has_bias) acc += LOADF(bias, m);
  const long yi = ((long)n * M + m) * osz + o;
  if (res_mode == 1) acc += LOADF(res, yi);
  acc = kiln_act(act, acc, act_a, act_b);
  if (res_mode == 2) acc += LOADF(res, yi);
  STOREF(y, yi, acc);
}
