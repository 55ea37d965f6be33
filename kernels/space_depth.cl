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
// position's Cp channels (zeros past C) at out[n, y, x, (i*b + j)*Cp ..].
__kernel void space_to_depth_nhwc(__global const T* in, __global T* out, int total, int C, int Cp, int H, int W, int b) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int w = g % W, h = (g / W) % H, n = g / (W * H);
  const int OH = H / b, OW = W / b;
  const int i = h % b, j = w % b;
  __global T* o = out + (((n * OH + h / b) * OW + w / b) * b * b + i * b + j) * Cp;
  const int plane = H * W;
  __global const T* x = in + (n * C) * plane + h * W + w;
  for (int c = 0; c < Cp; ++c) o[c] = c < C ? x[c * plane] : (T)0;
}
