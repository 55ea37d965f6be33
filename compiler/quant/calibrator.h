// Post-training calibration: turns the activations seen on calibration data into a clipping
// range (amax) per tensor, from which symmetric INT8/FP8 scales follow (scale = amax / qmax).
//
// Ranges are collected in two passes over the calibration samples, as TensorRT does: the first
// finds max|x|, the second fills a 2048-bin histogram of |x| over [0, max|x|]. Then:
//   minmax         amax = max|x|
//   percentile=P   amax = the P-th percentile of |x| (default 99.99)
//   entropy        amax minimizing the KL divergence between the clipped reference
//                  distribution and its 128-level quantized version (TensorRT's
//                  IInt8EntropyCalibrator2 as NVIDIA's pytorch-quantization / ModelOpt
//                  implement it: candidates from bin 128 on, the zero bin's count replaced
//                  by its neighbour's so that the zeros of a ReLU do not decide the range,
//                  the widest of equally good ranges, amax at the candidate's bin edge)
//   mse            amax minimizing the mean squared quantization error (clipping and
//                  rounding) of the histogram's values on the target's grid (ModelOpt's
//                  "mse" calibrator; on the FP8 grid for FP8 layers)
// Every calibrator's range is also scored by that squared error (`quantization_error`), which
// lets the build catch a range that is far worse than the best one for the same tensor.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/status.h"

namespace kiln {

struct CalibratorSpec {
  enum class Kind { kEntropy, kMinMax, kPercentile, kMse } kind = Kind::kEntropy;
  double percentile = 99.99;
};

// Parses "entropy", "minmax", "mse", "percentile" or "percentile=99.9".
Status parse_calibrator(const std::string& text, CalibratorSpec* out);

class AbsHistogram {
 public:
  static constexpr int kBins = 2048;

  // Pass 1: widen the range (and track the smallest signed value: a tensor that is never
  // negative is quantized on the unsigned grid).
  void observe_range(const float* x, size_t n);
  // Pass 2: count |x| into bins over [0, max_abs()]. NaN/Inf are reported by the caller first.
  void add(const float* x, size_t n);

  double max_abs() const { return max_abs_; }
  double min_value() const { return min_value_; }
  uint64_t total() const { return total_; }
  const std::vector<uint64_t>& bins() const { return bins_; }
  double bin_width() const { return max_abs_ > 0 ? max_abs_ / kBins : 0; }
  // Share of the counted values with |x| > amax (estimated at bin resolution).
  double clipped_share(double amax) const;

 private:
  double max_abs_ = 0;
  double min_value_ = 0;
  bool seen_ = false;
  uint64_t total_ = 0;
  std::vector<uint64_t> bins_ = std::vector<uint64_t>(kBins, 0);
};

// Fewer calibration values than this and the entropy calibrator uses the full range (minmax).
constexpr uint64_t kEntropyMinValues = 16 * 2048;

// The grid a tensor is quantized to with scale amax / qmax: symmetric INT8 (qmax 127), UINT8
// with zero point 0 for a tensor that is never negative (a ReLU's: [0, amax] on 255 steps,
// as onnxruntime's uint8 activations), or FP8 (E4M3FN qmax 448, E5M2 qmax 57344).
enum class QuantGrid { kInt8, kUnsignedInt8, kFp8E4M3, kFp8E5M2 };

// The clipping range chosen by `spec` from a histogram (entropy uses 256 levels on the
// unsigned grid, as ModelOpt does for unsigned tensors; percentile ignores the grid).
double calibrate_amax(const AbsHistogram& h, const CalibratorSpec& spec, QuantGrid grid = QuantGrid::kInt8);

// The histogram's mean squared error when quantized with range `amax` on `grid` (each bin's
// values taken at its centre), divided by the values' mean square: 0 is lossless, 1 is as bad
// as replacing every value by 0.
double quantization_error(const AbsHistogram& h, double amax, QuantGrid grid);

}  // namespace kiln
