#pragma once
#include "compiler/ir/graph.h"
#include "runtime/device/devices.h"
#include "runtime/plan/partition.h"
#include "runtime/plan/plan.h"

namespace kiln {

// Turns the optimized graph into a plan for `target`: tensors (constants packed 64-byte aligned
// into the weights), nodes in order with their runtime op, backends from the partitioner,
// segments, and the target's capabilities.
Status lower_to_plan(const ir::Graph& g, const ResolvedDevice& target, const PartitionOptions& partition, Plan* out);

}  // namespace kiln
