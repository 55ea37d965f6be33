// Channels-last (NHWC) convolutions: the one statement of what the attribute means, shared by the
// compiler pass that sets it (compiler/passes/channels_last.cpp), the plan rules and the kernels.
//
// A convolution (Conv, and the quantized ConvInteger, QLinearConv, Fp8Conv whose geometry
// runtime/backends/quantize_geometry.h reads) with `channels_last` = 1 reads x as
// [N, spatial..., C] and its weights as [M, kernel spatial..., C] (OHWI), and writes the output
// (and reads a fused residual) as [N, out spatial..., M]; every other input (scales, zero points,
// bias) is as in ONNX. Only group 1. Why: the tensor cores take both operands K-contiguous, which
// in NCHW the activations are not (8-bit tiles were transposed in registers, FP16 3x3 tiles
// gathered element by element); channels-last, every convolution is a GEMM whose rows (output
// positions) read whole 16-byte runs of channels.
//
// A MaxPool with `channels_last` = 1 reads x and writes y as [N, spatial..., C] (no Indices
// output): the pool between two channels-last convolutions (ResNet's stem and layer1).
//
// A SpaceToDepth with `channels_last` = 1 reads x NCHW [N, C, H, W] and writes the channels-last
// form of its output, [N, H/b, W/b, b*b*C'], with C' = its `channels` attribute (>= C; default C):
// y[n, h, w, (i*b + j)*C' + c] = x[n, c, h*b + i, w*b + j] for c < C, else 0. It begins a region at
// a strided convolution over few channels (compiler/passes/space_to_depth_conv.h), in one pass
// over the input instead of Pad, SpaceToDepth and a Transpose.
#pragma once
#include <string>

#include "runtime/core/attrs.h"
#include "runtime/core/tensor.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/ops/quantized_linear.h"

namespace kiln {

constexpr const char* kAttrChannelsLast = "channels_last";

// The inputs of `op` that the attribute lays out channels-last: x, the weights (OHWI) and the fused
// residual (-1: none); false for an op that does not take it (ConvInteger's geometry reads it, but
// no pass sets it there).
struct ChannelsLastInputs {
  int x, w, residual;
};
inline bool channels_last_inputs(const std::string& op, ChannelsLastInputs* in) {
  if (op == "Conv") *in = {0, 1, static_cast<int>(linear::kResidualInput)};
  else if (op == "QLinearConv") *in = {0, 3, static_cast<int>(kQResidualInput)};
  else if (op == "Fp8Conv") *in = {0, 2, static_cast<int>(kFp8ResidualInput)};
  else if (op == "MaxPool") *in = {0, -1, -1};
  else return false;
  return true;
}

inline bool is_channels_last(const Attributes& a) { return a.get_int(kAttrChannelsLast, 0) != 0; }

// [N, C, sp...] from [N, sp..., C] (weights: [M, Cg, k...] from [M, k..., Cg]).
inline Shape channels_first_shape(const Shape& s) {
  if (s.size() < 3) return s;
  Shape r{s[0], s.back()};
  r.insert(r.end(), s.begin() + 1, s.end() - 1);
  return r;
}

// [N, sp..., C] from [N, C, sp...].
inline Shape channels_last_shape(const Shape& s) {
  if (s.size() < 3) return s;
  Shape r{s[0]};
  r.insert(r.end(), s.begin() + 2, s.end());
  r.push_back(s[1]);
  return r;
}

// The permutations between the two (Transpose perm attributes) for a rank-`rank` tensor.
inline std::vector<int64_t> to_channels_last_perm(size_t rank) {
  std::vector<int64_t> p{0};
  for (size_t d = 2; d < rank; ++d) p.push_back(static_cast<int64_t>(d));
  p.push_back(1);
  return p;
}
inline std::vector<int64_t> to_channels_first_perm(size_t rank) {
  std::vector<int64_t> p{0, static_cast<int64_t>(rank) - 1};
  for (size_t d = 1; d + 1 < rank; ++d) p.push_back(static_cast<int64_t>(d));
  return p;
}

}  // namespace kiln
