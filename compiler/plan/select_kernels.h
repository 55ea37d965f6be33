// Kernel selection, the build's last step: each OpenCL node gets the kernel variant its op
// offers on the target device (runtime/ops/kernel_api.h, ClVariantsFn), recorded in
// PlanNode::choice. By default the op's own estimate picks (the first variant offered); with
// tuning every candidate, the portable kernel included, is timed on the device on random data
// for each distinct layer (op, shapes, dtypes, attributes) and the fastest kept, like
// TensorRT's tactic selection. A tuning cache file keeps the timings, keyed by device, driver,
// layer and candidate, so later builds of the same layers time nothing.
#pragma once
#include <cstdio>
#include <string>

#include "runtime/core/status.h"
#include "runtime/device/devices.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct KernelSelectOptions {
  bool tune = false;       // --tune
  std::string cache_path;  // --tuning-cache FILE (read if present, written after tuning)
  std::FILE* report = nullptr;
};

Status select_kernels(Plan* plan, const ResolvedDevice& target, const KernelSelectOptions& opts);

// Reads a tuning cache only to check it (a build checks --tuning-cache before its slow part).
Status check_tuning_cache(const std::string& path);

}  // namespace kiln
