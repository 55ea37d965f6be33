// kiln sweep as data: one model built in several precisions, each row its plan size, latency,
// throughput, error against the FP32 reference and (with labels) top-1 accuracy. A precision
// this kiln cannot build shows as not available with the reason.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "compiler/compiler.h"

namespace kiln {

struct SweepRow {
  std::string precision;
  bool available = false;
  std::string reason;  // why not available
  uint64_t plan_bytes = 0;
  double latency_ms = 0, per_second = 0, max_rel_l2 = 0, min_cosine = 1;
  int64_t top1_correct = 0, top1_rows = 0;
};

struct SweepOptions {
  std::vector<std::string> precisions = {"fp32", "fp16", "int8", "fp8"};
  // Evaluation samples: in memory, else the folder, else the build's calibration samples.
  const std::vector<CalibrationSample>* eval = nullptr;
  std::string eval_dir;
  HostTensor labels;  // int32/int64 class indices; empty: no top-1
  double seconds = 1;
  std::function<void(const SweepRow&)> on_row;  // each row as soon as it is measured
};

struct SweepResult {
  std::string device;
  size_t samples = 0;
  std::vector<SweepRow> rows;
};

// `base` carries the device, shapes, calibration samples and calibrator; its precision is ignored.
Status run_sweep(const std::string& model, const BuildOptions& base, const SweepOptions& opts, SweepResult* out);

}  // namespace kiln
