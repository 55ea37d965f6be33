// A strided convolution over too few channels for the tensor cores' 16-byte runs (an image
// network's stem: 3 channels, 7x7, stride 2) as SpaceToDepth(block = stride) and a stride-1
// convolution over block x block x C' channels, C' the fewest channels >= C whose blocks fill whole
// 16-byte runs (zero channels and weights added). Same result, every input value read in
// 16-byte runs, so the layout pass can take it into a channels-last region (ResNet-50's stem ran
// NCHW at 40 TFLOP/s beside 120-190 in the region: perf/results/2026-12-06-stem.md).
//
// With stride s, kernel k and begin pad p along an axis, output o reads input o*s - p + t
// (t < k). In blocks of s that is block o - q plus offset u + t, q = ceil(p / s), u = q*s - p:
// a kernel of ceil((u + k) / s) blocks, begin pad q blocks, stride 1; the new weights hold the
// old tap t at block (u + t) / s, position (u + t) % s.
#pragma once
#include <cstdint>

#include "compiler/ir/graph.h"
#include "runtime/core/status.h"

namespace kiln {

struct SpaceToDepthConv {
  int64_t block = 0;     // the convolution's stride, both axes
  int64_t channels = 0;  // C', the padded channel count SpaceToDepth sees
  int64_t kernel[2] = {0, 0};
  int64_t pads[4] = {0, 0, 0, 0};  // ONNX order: begins, then ends (in blocks)
};

// The form of convolution n (x at input x_index, constant OIHW weights at w_index) or false:
// 2-D, group 1, equal strides >= 2, dilation 1, spatial dims divisible by the stride, C elements of
// the input's dtype not already whole 16-byte runs, and at most 4x the multiplications.
bool space_to_depth_form(const ir::Node& n, int x_index, int w_index, SpaceToDepthConv* f);

// Rewrites n in that form and returns its new x: a SpaceToDepth before it that writes NHWC with the
// added channels (runtime/ops/channels_last.h), for the layout pass, which then takes n (and finds
// x already NHWC); n's weights become the block form (still OIHW), its geometry stride 1.
Status rewrite_as_space_to_depth(ir::Graph& g, ir::Node* n, int x_index, int w_index, const SpaceToDepthConv& f,
                                 int64_t opset, ir::Value** nhwc_x);

}  // namespace kiln
