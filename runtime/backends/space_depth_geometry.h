// Where an output element of DepthToSpace/SpaceToDepth comes from, shared by the CPU kernel
// and (as the same arithmetic in OpenCL C) kernels/space_depth.cl. Shapes are NCHW.
#pragma once
#include <cstdint>
#include <vector>

namespace kiln::space_depth {

// DepthToSpace: output [n, c, y, x] of [N, C, H*b, W*b] (C = the output's channels) reads input
// [n, ch, y / b, x / b] of [N, C*b*b, H, W] with ch = (i*b + j)*C + c (DCR) or c*b*b + i*b + j
// (CRD), i = y % b, j = x % b.
inline int64_t depth_to_space_src(int64_t n, int64_t c, int64_t y, int64_t x, int64_t C, int64_t H, int64_t W, int64_t b,
                                  bool crd) {
  const int64_t i = y % b, j = x % b;
  const int64_t ch = crd ? c * b * b + i * b + j : (i * b + j) * C + c;
  return ((n * C * b * b + ch) * H + y / b) * W + x / b;
}

// SpaceToDepth: output [n, ch, y, x] of [N, C*b*b, H/b, W/b] (C = the input's channels, H, W
// the input's) reads input [n, c, y*b + i, x*b + j] with ch = (i*b + j)*C + c.
inline int64_t space_to_depth_src(int64_t n, int64_t ch, int64_t y, int64_t x, int64_t C, int64_t H, int64_t W, int64_t b) {
  const int64_t c = ch % C, ij = ch / C, i = ij / b, j = ij % b;
  return ((n * C + c) * H + y * b + i) * W + x * b + j;
}

// Whether a channels-last SpaceToDepth of blocksize b and Cp channels maps `in` to `out`.
inline bool space_to_depth_nhwc_fits(const std::vector<int64_t>& in, const std::vector<int64_t>& out, int64_t b,
                                     int64_t Cp) {
  return in.size() == 4 && b >= 1 && Cp >= in[1] && in[2] % b == 0 && in[3] % b == 0 &&
         out == std::vector<int64_t>{in[0], in[2] / b, in[3] / b, b * b * Cp};
}

// SpaceToDepth channels-last (runtime/ops/channels_last.h): output [n, y, x, ch] of
// [N, H/b, W/b, b*b*Cp] reads input [n, c, y*b + i, x*b + j] with ch = (i*b + j)*Cp + c, or is
// zero (-1 here) for c >= C.
inline int64_t space_to_depth_nhwc_src(int64_t n, int64_t y, int64_t x, int64_t ch, int64_t C, int64_t Cp, int64_t H,
                                       int64_t W, int64_t b) {
  const int64_t c = ch % Cp, ij = ch / Cp, i = ij / b, j = ij % b;
  return c < C ? ((n * C + c) * H + y * b + i) * W + x * b + j : -1;
}

}  // namespace kiln::space_depth
