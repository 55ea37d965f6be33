// Accuracy measurement shared by kiln compare, the precision search (--accuracy-budget,
// --precision best) and kiln sweep: error statistics of one tensor against its FP32 reference,
// and running a plan over a set of samples.
#pragma once
#include <deque>
#include <memory>
#include <string>
#include <utility>
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
  double diff_l2 = 0, want_l2 = 0;  // ||got - want||, ||want||
};

// `got` and `want` have the same element count; any numeric dtypes.
TensorErrors compare_tensors(const TensorView& got, const TensorView& want);

// An output that a Concat joins is measured input by input: parts of different kinds (a
// detector's box coordinates in pixels beside its class probabilities in [0, 1]) have their own
// scales, and a relative L2 over the whole tensor weighs only the largest (YOLOv8n's INT8 class
// scores off by 0.35 while the tensor's error was 0.06: perf/results/2026-12-07-calibrators.md).
// A part's error on a sample is ||got - want|| over the larger of its ||want|| and its RMS norm
// over the samples: a sample where the part is all but zero (a photo without objects: every
// class probability near 0) is judged at the part's usual scale, not by the relative error of
// values nothing acts on (measured: 5.2 on such a photo, which moved 46 of YOLOv8n's 79 layers).
// `ranges` are the parts' [begin, end) along `axis` of the output, from `reference`'s node that
// writes tensor `tensor`; empty where no Concat writes it (or its extents are not static).
struct OutputParts {
  int axis = -1;
  std::vector<std::pair<int64_t, int64_t>> ranges;
};
OutputParts output_parts(const Plan& reference, int32_t tensor);
// compare_tensors over the elements whose index along `axis` is in [begin, end).
TensorErrors compare_part(const TensorView& got, const TensorView& want, int axis, int64_t begin, int64_t end);

// The plan's inputs as calibration-set descriptions (for load_calibration_set).
std::vector<CalibrationInput> plan_input_specs(const Plan& plan);

// Sample tensor `t` of input `name` as the plan takes it: where the plan's input is float16
// (--io-precision fp16), its float16 copy, kept in *converted (a deque: the copies kept for
// earlier inputs stay where they are); else `t` itself (no copy).
const HostTensor& as_plan_input(const Plan& plan, const std::string& name, const HostTensor& t,
                                std::deque<HostTensor>* converted);

// Runs `plan` on `device` once per sample; (*outputs)[s][i] is plan output i of sample s.
Status run_on_samples(std::shared_ptr<const Plan> plan, const std::string& device,
                      const std::vector<CalibrationSample>& samples, std::vector<std::vector<HostTensor>>* outputs);

// The worst relative L2 error of any output (or output part: output_parts) of any sample
// against the reference's outputs of the same name.
struct WorstError {
  double rel_l2 = 0;
  std::string output;
  size_t sample = 0;
  std::string part;  // "[4:22 along axis 1]" where the output is measured by parts
};
// With `budget` > 0, class-score outputs (is_class_scores) also count top1_margin_ratio scaled by
// the budget: a plan within the budget keeps every sample's top classes (part "top-1 margin").
Status worst_output_error(const Plan& plan, const std::vector<std::vector<HostTensor>>& got, const Plan& reference,
                          const std::vector<std::vector<HostTensor>>& want, WorstError* out, double budget = 0);

// Class scores: an output whose last axis holds one probability per class, read by taking its
// top class (a classifier's Softmax, a text recognizer's per-step Softmax): written in
// `reference` by Softmax or LogSoftmax, at least 2 classes. Relative L2 cannot tell whether the
// top class held: PP-OCRv4's recognizer within the 0.1 budget misread 2 of 78 text lines. A
// Gemm's rank-2 output is not taken for logits: it may as well be an embedding or a regression.
bool is_class_scores(const Plan& reference, int32_t tensor);
// Over every row of the last axis and every other class: how far `got` closed the reference's
// gap between the top class and that class, over the gap (floored at a tenth of how far the top
// stands above the row's mean, so near ties may swap within that). 1 or more: a class overtook
// the top one; below 1, every row's top class held (near ties: moved less than the floor).
double top1_margin_ratio(const TensorView& got, const TensorView& want);

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
