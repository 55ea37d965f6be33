// MaxPool (-DT=float|char|uchar|half, -DT_LOWEST) and AveragePool (float; half storage with
// -DKILN_HALF: kernels/float_storage.cl), one work-item per output
// element, in the 3-D form of runtime/backends/normalization_geometry.h (1-D and 2-D pools
// have leading unit dims). g: in[3], out[3], win[3], stride[3], dil[3], pad_begin[3],
// pad_end[3].
typedef struct {
  int in[3], out[3], win[3], stride[3], dil[3], pad_begin[3], pad_end[3];
} PoolGeom;

// Taps k of a window starting at `start` (tap at start + k*dil) that fall inside [lo, hi).
int2 tap_range(int start, int k, int dil, int lo, int hi) {
  const int k0 = start >= lo ? 0 : (lo - start + dil - 1) / dil;
  int k1 = start >= hi ? 0 : min(k, (hi - start + dil - 1) / dil);
  return (int2)(k0, max(k0, k1));
}

// The window of output (od, oh, ow): its first input position (in the padding where negative)
// and the range of taps along each axis that fall inside the input.
typedef struct {
  int sd, sh, sw;
  int2 kd, kh, kw;
} PoolWindow;

PoolWindow pool_window(PoolGeom g, int od, int oh, int ow) {
  PoolWindow w;
  w.sd = od * g.stride[0] - g.pad_begin[0];
  w.sh = oh * g.stride[1] - g.pad_begin[1];
  w.sw = ow * g.stride[2] - g.pad_begin[2];
  w.kd = tap_range(w.sd, g.win[0], g.dil[0], 0, g.in[0]);
  w.kh = tap_range(w.sh, g.win[1], g.dil[1], 0, g.in[1]);
  w.kw = tap_range(w.sw, g.win[2], g.dil[2], 0, g.in[2]);
  return w;
}

#ifdef T
// Values compare as float when T is half (loaded with vload_half).
#ifdef KILN_HALF
#define TV float
#else
#define TV T
#endif
// `ind` is written when want_ind (storage_order: 0 row-major, 1 column-major spatial index).
// -D POOL_GEOM={{in},{out},...} fixes the geometry at build time (the launcher passes the same
// values as g_arg): the index divisions become multiplications and the window loops unroll (the
// generic form cost ~8 integer divisions and ~200 instructions per output on an H100).
// -D POOL_CHANNELS=C: channels-last x and y ([N, spatial..., C], runtime/ops/channels_last.h; no
// Indices), neighbouring work-items on neighbouring channels.
__kernel void max_pool(__global const T* x, __global T* y, __global long* ind, int total, PoolGeom g_arg,
                       int want_ind, int col_major, int nsp) {
#ifdef POOL_GEOM
  const PoolGeom g = POOL_GEOM;
#else
  const PoolGeom g = g_arg;
#endif
  const int o = get_global_id(0);
  if (o >= total) return;
#ifdef POOL_CHANNELS
  const int ch = o % POOL_CHANNELS;
  int r = o / POOL_CHANNELS;
#define X_AT(i) ((i) * POOL_CHANNELS + ch)
#else
  int r = o;
#define X_AT(i) (i)
#endif
  const int ow = r % g.out[2]; r /= g.out[2];
  const int oh = r % g.out[1]; r /= g.out[1];
  const int od = r % g.out[0];
  const int plane = r / g.out[0];
  const int plane_in = g.in[0] * g.in[1] * g.in[2];
  const PoolWindow win = pool_window(g, od, oh, ow);
  const int sd = win.sd, sh = win.sh, sw = win.sw;
  const int2 kd = win.kd, kh = win.kh, kw = win.kw;
  const int xp = plane * plane_in;
  TV best = T_LOWEST;
  int best_at = -1;
  for (int a = kd.x; a < kd.y; ++a)
    for (int b = kh.x; b < kh.y; ++b) {
      const int rowoff = ((sd + a * g.dil[0]) * g.in[1] + sh + b * g.dil[1]) * g.in[2];
      for (int c = kw.x; c < kw.y; ++c) {
        const int at = rowoff + sw + c * g.dil[2];
        const TV v = LOADF(x, X_AT(xp + at));
        if (v > best || best_at < 0) {  // strict: the first maximum wins
          best = v;
          best_at = at;
        }
      }
    }
  STOREF(y, o, best);
  if (want_ind) {
    long idx = best_at;
    if (col_major && best_at >= 0) {
      const int w = best_at % g.in[2], h = best_at / g.in[2] % g.in[1], d = best_at / (g.in[1] * g.in[2]);
      idx = nsp == 3 ? d + h * g.in[0] + w * g.in[0] * g.in[1] : h + w * g.in[1];
    }
    ind[o] = (long)plane * plane_in + idx;
  }
#undef X_AT
}

#ifdef POOL_VEC
// Channels-last MaxPool, POOL_VEC channels per work-item in one 16-byte load per tap (C a
// multiple of POOL_VEC; -D POOL_GEOM and POOL_CHANNELS as above): the scalar form above moved
// 2 bytes per work-item and tap, 0.34 ms (770 GB/s) for ResNet-50's FP16 pool at batch 128.
// Element indices are multiples of POOL_VEC, so vloadN/vload_halfN take them divided.
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#ifdef KILN_HALF
#define VT CAT(float, POOL_VEC)
#define VLOAD(p, i) CAT(vload_half, POOL_VEC)((i) / POOL_VEC, (p))
#define VSTORE(p, i, v) CAT(CAT(vstore_half, POOL_VEC), _rte)((v), (i) / POOL_VEC, (p))
#elif defined(POOL_INT)
// 8-bit runs as one uint4 each: vload16 promises byte alignment only, and NVIDIA's compiler then
// loads byte by byte (the uint8 pool ran at 530 GB/s where FP16's reached 1.85 TB/s). Element
// indices are multiples of 16 and buffers start aligned, so the uint4 accesses are aligned.
#define VT CAT(T, POOL_VEC)
#define VLOAD(p, i) CAT(as_, VT)(*(__global const uint4*)((p) + (i)))
#define VSTORE(p, i, v) (*(__global uint4*)((p) + (i)) = as_uint4(v))
#else
#define VT CAT(T, POOL_VEC)
#define VLOAD(p, i) CAT(vload, POOL_VEC)((i) / POOL_VEC, (p))
#define VSTORE(p, i, v) CAT(vstore, POOL_VEC)((v), (i) / POOL_VEC, (p))
#endif
__kernel void max_pool_nhwc(__global const T* x, __global T* y, int total) {
  const PoolGeom g = POOL_GEOM;
  const int o = get_global_id(0);  // (position, channel group)
  if (o >= total) return;
  const int c0 = o % (POOL_CHANNELS / POOL_VEC) * POOL_VEC;
  int r = o / (POOL_CHANNELS / POOL_VEC);
  const int ow = r % g.out[2]; r /= g.out[2];
  const int oh = r % g.out[1]; r /= g.out[1];
  const int od = r % g.out[0];
  const int n = r / g.out[0];
  const PoolWindow win = pool_window(g, od, oh, ow);
  const int sd = win.sd, sh = win.sh, sw = win.sw;
  const int2 kd = win.kd, kh = win.kh, kw = win.kw;
  const int xp = n * g.in[0] * g.in[1] * g.in[2];
  // The first tap seeds each lane; later ones replace it only where strictly greater (the
  // scalar kernel's first-maximum rule, NaN included).
  VT best = (VT)(T_LOWEST);
  int first = 1;
  for (int a = kd.x; a < kd.y; ++a)
    for (int b = kh.x; b < kh.y; ++b) {
      const int rowoff = ((sd + a * g.dil[0]) * g.in[1] + sh + b * g.dil[1]) * g.in[2];
      for (int c = kw.x; c < kw.y; ++c) {
        const VT v = VLOAD(x, (xp + rowoff + sw + c * g.dil[2]) * POOL_CHANNELS + c0);
#ifdef POOL_INT
        best = first ? v : max(best, v);  // no NaN: the first maximum is any maximum
#else
        best = first ? v : select(best, v, v > best);
#endif
        first = 0;
      }
    }
  VSTORE(y, o * POOL_VEC, best);
}
#endif
#endif

__kernel void average_pool(__global const store_t* x, __global store_t* y, int total, PoolGeom g, int count_pad) {
  const int o = get_global_id(0);
  if (o >= total) return;
  int r = o;
  const int ow = r % g.out[2]; r /= g.out[2];
  const int oh = r % g.out[1]; r /= g.out[1];
  const int od = r % g.out[0];
  const int plane = r / g.out[0];
  const PoolWindow win = pool_window(g, od, oh, ow);
  const int sd = win.sd, sh = win.sh, sw = win.sw;
  const int2 kd = win.kd, kh = win.kh, kw = win.kw;
  int count;
  if (count_pad) {
    const int2 pd = tap_range(sd, g.win[0], g.dil[0], -g.pad_begin[0], g.in[0] + g.pad_end[0]);
    const int2 ph = tap_range(sh, g.win[1], g.dil[1], -g.pad_begin[1], g.in[1] + g.pad_end[1]);
    const int2 pw = tap_range(sw, g.win[2], g.dil[2], -g.pad_begin[2], g.in[2] + g.pad_end[2]);
    count = (pd.y - pd.x) * (ph.y - ph.x) * (pw.y - pw.x);
  } else {
    count = (kd.y - kd.x) * (kh.y - kh.x) * (kw.y - kw.x);
  }
  const int xp = plane * g.in[0] * g.in[1] * g.in[2];
  float sum = 0.0f;
  for (int a = kd.x; a < kd.y; ++a)
    for (int b = kh.x; b < kh.y; ++b) {
      const int row = xp + ((sd + a * g.dil[0]) * g.in[1] + sh + b * g.dil[1]) * g.in[2] + sw;
      for (int c = kw.x; c < kw.y; ++c) sum += LOADF(x, row + c * g.dil[2]);
    }
  STOREF(y, o, count > 0 ? sum / count : NAN);
}
