// Partition v0: each node goes to the OpenCL backend when the device is an OpenCL device and
// kiln has an OpenCL kernel supporting the node there; everything else goes to the CPU backend,
// which implements every op.
#pragma once
#include <vector>

#include "runtime/plan/plan.h"

namespace kiln {

std::vector<Backend> partition_nodes(const Plan& plan, const DeviceCaps& device);

// Sets each node's backend from partition_nodes and recomputes the segments.
void apply_partition(Plan* plan, const DeviceCaps& device);

}  // namespace kiln
