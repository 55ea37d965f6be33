// Accuracy measurement shared by kiln compare, the precision search (--accuracy-budget,
// --precision best) and kiln sweep: error statistics of one tensor against its FP32 reference,
// and running a plan over a set of samples.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "compiler/quant/calibration_set.h"
#include "runtime/core/status.h"
#include "runtime/core/tensor.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct TensorErrors {
  double max_abs = 0, mean_abs = 0;
  double max_rel = 0;  // over the elements whose reference is non-zero
  double rel_l2 = 0;   // ||got - want|| / ||want|| (||got - want|| when want is all zero)
  double cosine = 1;
};

// `got` and `want` have the same element count; any numeric dtypes.
TensorErrors compare_tensors(const TensorView& got, const TensorView& want);

// The plan's inputs as calibration-set descriptions (for load_calibration_set).
std::vector<CalibrationInput> plan_input_specs(const Plan& plan);

// Runs `plan` on `device` once per sample; (*outputs)[s][i] is plan output i of sample s.
Status run_on_samples(std::shared_ptr<const Plan> plan, const std::string& device,
                      const std::vector<CalibrationSample>& samples, std::vector<std::vector<HostTensor>>* outputs);

// The worst relative L2 error of any output of any sample against the reference's outputs
// of the same name.
struct WorstError {
  double rel_l2 = 0;
  std::string output;
  size_t sample = 0;
};
Status worst_output_error(const Plan& plan, const std::vector<std::vector<HostTensor>>& got, const Plan& reference,
                          const std::vector<std::vector<HostTensor>>& want, WorstError* out);

// A calibration cache in a fresh temporary folder (under $TMPDIR, else /tmp), removed with the
// object with its files: lets the many builds of one command calibrate once per calibrator.
class ScratchCalibCache {
 public:
  ScratchCalibCache() = default;
  ScratchCalibCache(const ScratchCalibCache&) = delete;
  ScratchCalibCache& operator=(const ScratchCalibCache&) = delete;
  ~ScratchCalibCache();
  Status create();
  // For BuildOptions::calib_cache_dir: one cache file per calibrator in here.
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace kiln
