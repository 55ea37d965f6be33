// The layer check of post-training quantization: after calibration, `kiln build` runs the
// quantized graph and the FP32 graph side by side on (up to kLayerCheckSamples of) the
// calibration samples on the CPU backend and measures each quantized layer's output against
// FP32. A layer whose own error (its output's relative L2 error less its input's) is far out
// of line with the other layers' is given the mse calibrator's ranges, and if that does not
// bring it in line, kept in FP32 - one report line per layer, so that `--precision int8
// --calib DIR` never silently produces a broken plan.
#pragma once
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/quant/calibration_set.h"
#include "runtime/core/status.h"

namespace kiln {

constexpr size_t kLayerCheckSamples = 8;
// A layer's own error is far out of line when it exceeds both kLayerErrorFloor and
// kLayerOutlierFactor times the median own error of the layers, or kLayerErrorCeiling alone
// (when every layer is bad, the median says nothing).
constexpr double kLayerErrorFloor = 0.10;
constexpr double kLayerOutlierFactor = 4.0;
constexpr double kLayerErrorCeiling = 0.20;

struct LayerError {
  double input = 0, output = 0;  // relative L2 error of the layer's input and output vs FP32
  double own() const { return output - input; }
};

// `layers` pairs each quantized layer's input and output tensor names (both exist in both
// graphs). (*out)[i] is layer i's errors over `samples`.
Status measure_layer_errors(const ir::Graph& fp32, const ir::Graph& quantized,
                            const std::vector<std::pair<std::string, std::string>>& layers,
                            const std::vector<CalibrationSample>& samples, std::vector<LayerError>* out);

// Indices of the layers whose own error is far out of line (see above).
std::vector<size_t> outlier_layers(const std::vector<LayerError>& errors);

}  // namespace kiln
