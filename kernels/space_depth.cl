// DepthToSpace / SpaceToDepth: one work-item per output element, moving element bytes
// (-DT=uchar|ushort|uint|ulong). The index math is runtime/backends/space_depth_geometry.h's.
// C, H, W: the output's channels and the input's height and width (DepthToSpace); the input's
// channels, height and width (SpaceToDepth).
__kernel void depth_to_space(__global const T* in, __global T* out, int total, int C, int OH, int OW, int H, int W, int b,
                             int crd) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int x = g % OW, y = (g / OW) % OH, c = (g / (OW * OH)) % C, n = g / (OW * OH * C);
  const int i = y % b, j = x % b;
  const int ch = crd ? c * b * b + i * b + j : (i * b + j) * C + c;
  out[g] = in[((n * C * b * b + ch) * H + y / b) * W + x / b];
}

__kernel void space_to_depth(__global const T* in, __global T* out, int total, int OC, int OH, int OW, int C, int H, int W,
                             int b) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int x = g % OW, y = (g / OW) % OH, ch = (g / (OW * OH)) % OC, n = g / (OW * OH * OC);
  const int c = ch % C, ij = ch / C, i = ij / b, j = ij % b;
  out[g] = in[((n * C + c) * H + y * b + i) * W + x * b + j];
}

// Channels-last SpaceToDepth (runtime/ops/channels_last.h): one work-item per input position
// (n, y*b + i, x*b + j), neighbours along the input row (coalesced reads); it writes that
// position's CP channels (zeros past C; -D S2D_C, S2D_CP) at out[n, y, x, (i*b + j)*CP ..], in one
// vector store where CP is 2, 4, 8 or 16 (ResNet-50's FP16 stem: 4 halves; element by element it
// ran at 680 GB/s on an H100).
#ifdef S2D_CP
#define S2D_CAT_(a, b) a##b
#define S2D_CAT(a, b) S2D_CAT_(a, b)
__kernel void space_to_depth_nhwc(__global const T* in, __global T* out, int total, int H, int W, int b) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int w = g % W, h = (g / W) % H, n = g / (W * H);
  const int OH = H / b, OW = W / b;
  const int i = h % b, j = w % b;
  __global T* o = out + (((n * OH + h / b) * OW + w / b) * b * b + i * b + j) * S2D_CP;
  const int plane = H * W;
  __global const T* x = in + (n * S2D_C) * plane + h * W + w;
  T v[S2D_CP];
  for (int c = 0; c < S2D_CP; ++c) v[c] = c < S2D_C ? x[c * plane] : (T)0;
#if S2D_CP == 2 || S2D_CP == 4 || S2D_CP == 8 || S2D_CP == 16
  S2D_CAT(vstore, S2D_CP)(S2D_CAT(vload, S2D_CP)(0, v), 0, o);
#else
  for (int c = 0; c < S2D_CP; ++c) o[c] = v[c];
#endif
}
#endif
