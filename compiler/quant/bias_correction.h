// Bias correction of post-training quantization (the empirical form of Nagel et al., "Data-Free
// Quantization Through Weight Equalization and Bias Correction", 2019; OpenVINO's NNCF applies
// it by default). Rounding a layer's weights W to the INT8/FP8 grid (W') moves the mean of its
// output channel c by E[((W - W') x)_c], and that bias compounds through the layers after it:
// per-channel INT8 weights alone (activations in FP32) change 13% of EfficientNet-Lite0's top-1
// answers on held-out photos; with the shift added back to the bias, 5%.
//
// The calibration pass records each corrected layer's input mean per channel (axis 1); a
// convolution's tap k of input channel ci then sees mean[ci] times the share of output
// positions at which that tap lands inside the input rather than in the padding (per spatial
// axis, the shares multiply), which matches the exact per-tap means to within a fraction of
// the correction on real CNNs without storing them per layer.
#pragma once
#include <vector>

#include "compiler/ir/graph.h"
#include "runtime/core/tensor.h"

namespace kiln {

// The mean shift of every output channel of `layer` when its float32 weights `w` are replaced
// by `rounded` (same layout and size), given the mean per channel of its input (axis 1).
//   Conv: w [M, C/group, k...], shift [M], from the node's canonical pads/strides/dilations and
//         its input and output shapes.
//   MatMul / Gemm as a linear layer: `w` already [K, N] (a Gemm's transB undone), a 2-D input
//         [rows, K]: shift [N].
// Returns false (and leaves *shift empty) when it does not apply: another op, an input of rank
// above 2 for a matrix product, or means that do not match the input's channels.
bool output_mean_shift(const ir::Node& layer, const HostTensor& w, const std::vector<float>& rounded,
                       const std::vector<double>& input_mean, std::vector<double>* shift);

}  // namespace kiln
