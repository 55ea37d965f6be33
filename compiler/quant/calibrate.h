// Post-training calibration: runs the FP32 graph on the calibration samples (CPU backend) and
// turns each requested activation's values into a clipping range with the chosen calibrator.
// Ranges are cached in a small checksummed text file (--calib-cache) and reused when present.
#pragma once
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "compiler/quant/calibrator.h"

namespace kiln {

struct TensorRange {
  double amax = 0;           // symmetric clipping range [-amax, amax]
  double clipped_share = 0;  // share of calibration values beyond it
  // The mse calibrator's range for the same values (0 when the ranges came from a cache):
  // the range the layer check (compiler/quant/layer_check.h) falls back to.
  double mse_amax = 0;
  // Never negative on the calibration samples: INT8 layers quantize it on the unsigned grid
  // (UINT8, scale amax / 255, zero point 0).
  bool non_negative = false;
  // max |x| per channel of the last axis over all samples; only for the tensors asked for
  // (SmoothQuant, compiler/quant/smooth_quant.h), empty otherwise.
  std::vector<double> channel_amax;
  // The mean per channel of axis 1 over all samples; only for the tensors asked for (the inputs
  // of the layers whose bias is corrected, compiler/quant/bias_correction.h), empty otherwise.
  std::vector<double> channel_mean;
};

// What to calibrate: the graph values (graph inputs or node outputs) to get ranges for; of
// those, the ones that also get their channel_amax (`per_channel`) or channel_mean
// (`channel_means`); and the FP8 tensors' grid (`grids`; others are INT8), for the mse
// calibrator and the error estimates.
struct CalibrationRequest {
  std::vector<std::string> tensors;
  std::set<std::string> per_channel;
  std::set<std::string> channel_means;
  std::map<std::string, QuantGrid> grids;
};

// A calibrated range this many times worse in squared quantization error than the mse
// calibrator's range for the same tensor is "far out of line": the mse range replaces it.
constexpr double kFarWorseError = 4.0;
// ... unless its error is below this (relative mean square: 1e-4 is a 1% RMS error), which
// no layer notices.
constexpr double kNegligibleError = 1e-4;

// Ranges of the values `request` names. The graph must be shape-inferred; it is not modified.
// `report` (may be null) gets the progress bar, the per-tensor table and one line per range the
// guard above replaced. A cache whose ranges are complete is used even when it lacks channel
// means (an older cache): those tensors' channel_mean stays empty.
// `kept` (may be null) gets the layers a cache records as kept in FP32 by the layer check.
Status calibrate_ranges(ir::Graph& g, const CalibrationRequest& request, const BuildOptions& opts,
                        std::FILE* report, std::map<std::string, TensorRange>* out, bool* from_cache = nullptr,
                        std::set<std::string>* kept = nullptr);

// The cache: "kiln-calibration-cache 4", "calibrator SPEC", one "AMAX CLIPPED NAME" line per
// tensor, one "channels K A1,...,AK NAME" line per tensor with channel maxima, one
// "unsigned NAME" line per never-negative tensor, one "means K M1,...,MK NAME" line per tensor
// with channel means, one "keep NODE" line per layer the layer check kept in FP32 (so that
// every build reading the cache - the other points of a dynamic plan, the builds of a precision
// search, a later build with the same --calib-cache - quantizes the same layers), and a CRC-32
// of the lines before it. A cache is written with the lowest version that holds its lines (2
// without unsigned tensors, 3 without means, 4 without kept layers); versions 1 (no channel
// lines) to 4 are still read. Reading fails (naming the file) on any damage.
Status write_calibration_cache(const std::string& path, const std::string& calibrator,
                               const std::map<std::string, TensorRange>& ranges, const std::set<std::string>& kept = {});
Status read_calibration_cache(const std::string& path, const std::string& calibrator,
                              std::map<std::string, TensorRange>* ranges, std::set<std::string>* kept = nullptr);

}  // namespace kiln
