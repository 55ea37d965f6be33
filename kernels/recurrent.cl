// RNN, GRU and LSTM (CELL 0, 1, 2; canonical node: runtime/backends/recurrent_geometry.h).
// recurrent_project first computes the input's share of every gate at every step, which does
// not depend on the recurrence, in parallel. The recurrence is sequential in time, so then one
// work-group runs the whole sequence of one (direction, batch item): each work-item owns hidden
// units j = lid, lid + size, ..., keeps their cell state in __local memory and adds R h to their
// projected gates, the previous hidden state shared through a double-buffered __local array
// (one barrier per step; GRU's reset gate needs a second). Steps past the item's sequence_lens
// entry write zeros to Y.

#define RNN_BIAS 1
#define RNN_LENS 2
#define RNN_H0 4
#define RNN_C0 8
#define RNN_PEEP 16
#define RNN_Y 32
#define RNN_YH 64
#define RNN_YC 128
#define RNN_CLIP 256
#define RNN_LBR 512
#define RNN_INPUT_FORGET 1024

// Activation codes: rnngeo::Activation.
typedef struct {
  int code[6];
  float alpha[6];
  float beta[6];
} RnnActs;

typedef struct {
  int seq, batch, input, hidden, dirs, mode, layout, flags;
  float clip;
} RnnShape;

float rnn_act(int code, float x, float alpha, float beta) {
  switch (code) {
    case 0: return fmax(x, 0.0f);
    case 1: return tanh(x);
    case 2: return 1.0f / (1.0f + exp(-x));
    case 3: return alpha * x + beta;
    case 4: return x >= 0.0f ? x : alpha * x;
    case 5: return x >= alpha ? x : 0.0f;
    case 6: return alpha * tanh(beta * x);
    case 7: return fmin(fmax(alpha * x + beta, 0.0f), 1.0f);
    case 8: return x >= 0.0f ? x : alpha * (exp(x) - 1.0f);
    case 9: return x / (1.0f + fabs(x));
    default: return x > 20.0f ? x : log1p(exp(x));
  }
}

float rnn_dot(__global const float* row, __global const float* v, int n) {
  float s = 0.0f;
  for (int k = 0; k < n; ++k) s += row[k] * v[k];
  return s;
}

float rnn_dot_local(__global const float* row, __local const float* v, int n) {
  float s = 0.0f;
  for (int k = 0; k < n; ++k) s += row[k] * v[k];
  return s;
}

#if CELL == 2
#define GATES 4
#define NACT 3
#elif CELL == 1
#define GATES 3
#define NACT 2
#else
#define GATES 1
#define NACT 1
#endif

// proj[d][row][q] = W_d[q] . X[row] + Wb_d[q] + Rb_d[q] (GRU's hidden gate: without Rb, which
// goes inside the reset product), row in X's own order (layout 0: t * batch + b).
__kernel void recurrent_project(__global const float* x, __global const float* w, __global const float* bias,
                                __global float* proj, RnnShape s) {
  const int gh = GATES * s.hidden, rows = s.seq * s.batch;
  const int gid = get_global_id(0);
  if (gid >= s.dirs * rows * gh) return;
  const int q = gid % gh, row = (gid / gh) % rows, d = gid / (gh * rows);
  float v = rnn_dot(w + (size_t)(d * gh + q) * s.input, x + (size_t)row * s.input, s.input);
  if (s.flags & RNN_BIAS) {
    __global const float* wb = bias + (size_t)d * 2 * gh;
    v += wb[q];
    if (!(CELL == 1 && q >= 2 * s.hidden)) v += wb[gh + q];
  }
  proj[gid] = v;
}

__kernel void recurrent(__global const float* proj, __global const float* r, __global const float* bias,
                        __global const int* lens, __global const float* h0, __global const float* c0,
                        __global const float* peep, __global float* y, __global float* y_h, __global float* y_c,
                        RnnShape s, RnnActs acts, __local float* hbuf, __local float* cbuf, __local float* rbuf) {
  const int group = get_group_id(0);
  const int d = group / s.batch, b = group % s.batch;
  const int lid = get_local_id(0), ls = get_local_size(0);
  const int H = s.hidden, S = s.seq, B = s.batch, D = s.dirs;
  const int rev = s.mode == 1 || (s.mode == 2 && d == 1);
  const int has_bias = s.flags & RNN_BIAS;
  const float clip = s.clip;
  const int do_clip = s.flags & RNN_CLIP;
  __global const float* rd = r + (size_t)d * GATES * H * H;
  __global const float* rb = bias + (size_t)d * 2 * GATES * H + GATES * H;
  __global const float* pd = peep + (size_t)d * 3 * H;
  const int a0 = d * NACT;
  int len = (s.flags & RNN_LENS) ? lens[b] : S;
  len = clamp(len, 0, S);
  const int st = (s.layout ? b * D + d : d * B + b) * H;
  for (int j = lid; j < H; j += ls) {
    hbuf[j] = (s.flags & RNN_H0) ? h0[st + j] : 0.0f;
    cbuf[j] = (s.flags & RNN_C0) ? c0[st + j] : 0.0f;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  int cur = 0;
  for (int step = 0; step < len; ++step) {
    const int t = rev ? len - 1 - step : step;
    __global const float* pj = proj + ((size_t)d * S * B + (s.layout ? b * S + t : t * B + b)) * GATES * H;
    __local float* hp = hbuf + cur * H;
    __local float* hn = hbuf + (1 - cur) * H;
#if CELL == 1
    // Reset gate first: the candidate of every unit needs all of r (unless linear_before_reset).
    for (int j = lid; j < H; j += ls) {
      float v = pj[H + j] + rnn_dot_local(rd + (size_t)(H + j) * H, hp, H);
      if (do_clip) v = clamp(v, -clip, clip);
      const float rg = rnn_act(acts.code[a0], v, acts.alpha[a0], acts.beta[a0]);
      rbuf[j] = (s.flags & RNN_LBR) ? rg : rg * hp[j];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
    for (int j = lid; j < H; j += ls) {
#if CELL == 0
      float v = pj[j] + rnn_dot_local(rd + (size_t)j * H, hp, H);
      if (do_clip) v = clamp(v, -clip, clip);
      hn[j] = rnn_act(acts.code[a0], v, acts.alpha[a0], acts.beta[a0]);
#elif CELL == 1
      float z = pj[j] + rnn_dot_local(rd + (size_t)j * H, hp, H);
      if (do_clip) z = clamp(z, -clip, clip);
      z = rnn_act(acts.code[a0], z, acts.alpha[a0], acts.beta[a0]);
      __global const float* rh = rd + (size_t)(2 * H + j) * H;
      const float rbh = has_bias ? rb[2 * H + j] : 0.0f;
      float hh = pj[2 * H + j];
      if (s.flags & RNN_LBR) hh += rbuf[j] * (rnn_dot_local(rh, hp, H) + rbh);
      else hh += rnn_dot_local(rh, rbuf, H) + rbh;
      if (do_clip) hh = clamp(hh, -clip, clip);
      hh = rnn_act(acts.code[a0 + 1], hh, acts.alpha[a0 + 1], acts.beta[a0 + 1]);
      hn[j] = (1.0f - z) * hh + z * hp[j];
#else
      float g[4];
      for (int q = 0; q < 4; ++q) g[q] = pj[q * H + j] + rnn_dot_local(rd + (size_t)(q * H + j) * H, hp, H);
      const int peephole = s.flags & RNN_PEEP;
      const float c_prev = cbuf[j];
      float vi = g[0] + (peephole ? pd[j] * c_prev : 0.0f);
      if (do_clip) vi = clamp(vi, -clip, clip);
      const float ig = rnn_act(acts.code[a0], vi, acts.alpha[a0], acts.beta[a0]);
      float fg;
      if (s.flags & RNN_INPUT_FORGET) {
        fg = 1.0f - ig;
      } else {
        float vf = g[2] + (peephole ? pd[2 * H + j] * c_prev : 0.0f);
        if (do_clip) vf = clamp(vf, -clip, clip);
        fg = rnn_act(acts.code[a0], vf, acts.alpha[a0], acts.beta[a0]);
      }
      float vc = g[3];
      if (do_clip) vc = clamp(vc, -clip, clip);
      const float cg = rnn_act(acts.code[a0 + 1], vc, acts.alpha[a0 + 1], acts.beta[a0 + 1]);
      const float c_new = fg * c_prev + ig * cg;
      cbuf[j] = c_new;
      float vo = g[1] + (peephole ? pd[H + j] * c_new : 0.0f);
      if (do_clip) vo = clamp(vo, -clip, clip);
      const float og = rnn_act(acts.code[a0], vo, acts.alpha[a0], acts.beta[a0]);
      hn[j] = og * rnn_act(acts.code[a0 + 2], c_new, acts.alpha[a0 + 2], acts.beta[a0 + 2]);
#endif
      if (s.flags & RNN_Y) y[(size_t)(s.layout ? (b * S + t) * D + d : (t * D + d) * B + b) * H + j] = hn[j];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    cur = 1 - cur;
  }
  __local float* hf = hbuf + cur * H;
  for (int j = lid; j < H; j += ls) {
    if (s.flags & RNN_Y)
      for (int t = len; t < S; ++t) y[(size_t)(s.layout ? (b * S + t) * D + d : (t * D + d) * B + b) * H + j] = 0.0f;
    if (s.flags & RNN_YH) y_h[st + j] = hf[j];
    if (s.flags & RNN_YC) y_c[st + j] = cbuf[j];
  }
}
