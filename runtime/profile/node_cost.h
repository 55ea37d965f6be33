// Work estimates per node, for the profiler's achieved GFLOP/s and GB/s and the memory- or
// compute-bound call. Not used for correctness.
#pragma once
#include <cstdint>

#include "runtime/plan/plan.h"

namespace kiln {

struct NodeCost {
  double flops = 0;     // floating-point (or integer) operations
  uint64_t bytes = 0;   // bytes read from inputs plus bytes written to outputs
};

NodeCost node_cost(const Plan& plan, const PlanNode& node);

// Arithmetic intensity above which a node counts as compute-bound (FLOP per byte). A fixed
// ridge point: GPUs sit around 10-60, CPUs around 5-15; kiln does not measure the device.
constexpr double kComputeBoundIntensity = 10.0;

}  // namespace kiln
