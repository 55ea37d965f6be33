// Post-training calibration: turns the activations seen on calibration data into a clipping
// range (amax) per tensor, from which symmetric INT8/FP8 scales follow (scale = amax / qmax).
//
// Ranges are collected in two passes over the calibration samples, as TensorRT does: the first
// finds max|x|, the second fills a 2048-bin histogram of |x| over [0, max|x|]. Then:
//   minmax         amax = max|x|
//   percentile=P   amax = the P-th percentile of |x| (default 99.99)
//   entropy        amax minimizing the KL divergence between the clipped reference
//                  distribution and its 128-level quantized version (TensorRT's
//                  IInt8EntropyCalibrator2 algorithm)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/status.h"

namespace kiln {

struct CalibratorSpec {
  enum class Kind { kEntropy, kMinMax, kPercentile } kind = Kind::kEntropy;
  double percentile = 99.99;
};

// Parses "entropy", "minmax", "percentile" or "percentile=99.9".
Status parse_calibrator(const std::string& text, CalibratorSpec* out);

class AbsHistogram {
 public:
  static constexpr int kBins = 2048;

  // Pass 1: widen the range.
  void observe_range(const float* x, size_t n);
  // Pass 2: count |x| into bins over [0, max_abs()]. NaN/Inf are reported by the caller first.
  void add(const float* x, size_t n);

  double max_abs() const { return max_abs_; }
  uint64_t total() const { return total_; }
  const std::vector<uint64_t>& bins() const { return bins_; }
  double bin_width() const { return max_abs_ > 0 ? max_abs_ / kBins : 0; }
  // Share of the counted values with |x| > amax (estimated at bin resolution).
  double clipped_share(double amax) const;

 private:
  double max_abs_ = 0;
  uint64_t total_ = 0;
  std::vector<uint64_t> bins_ = std::vector<uint64_t>(kBins, 0);
};

// Fewer calibration values than this and the entropy calibrator uses the full range (minmax).
constexpr uint64_t kEntropyMinValues = 16 * 2048;

// The clipping range chosen by `spec` from a histogram; `levels` is the number of positive
// quantization levels (127 for INT8, 128 bins as TensorRT uses for entropy).
double calibrate_amax(const AbsHistogram& h, const CalibratorSpec& spec);

}  // namespace kiln
