// Run-time values a device kernel must refuse (an out-of-range Gather index): a kernel cannot
// return a status, so it records the first such value in a small per-runtime flag buffer and
// writes something harmless in its place; the executor reads the flag after each run that
// could set it and turns it into an error naming the node, as the CPU kernel's would be.
// Layout (3 ints): [0] 1 + index of the node that refused (0: none), [1], [2] the refused
// value's low and high 32 bits.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/device/cl_runtime.h"
#include "runtime/plan/plan.h"

namespace kiln {

// The flag buffer of `cl` (a scratch slot of its own), zeroed the first time.
Status device_error_flag(ClRuntime& cl, cl_mem* out);
// Zeroes the flag (a new context, or after a reported error).
Status reset_device_errors(ClRuntime& cl);
// After the queue is drained: the error a kernel recorded, if any (the flag is cleared).
Status check_device_errors(ClRuntime& cl, const Plan& plan, const std::vector<PlanNode>* nodes);
// Whether a node may set the flag (so the executor reads it only for plans that can).
bool sets_device_errors(const Plan& plan, const PlanNode& node);

}  // namespace kiln
