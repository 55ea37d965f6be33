// Partitioning: which backend runs each node. The OpenCL backend takes a node only if kiln has
// an OpenCL kernel that supports it on the device; among the backends that can run a node, a
// cost model picks the cheaper one, counting the node's estimated time on each backend and the
// transfers its inputs would need. The CPU backend implements every op and is the fallback.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "runtime/plan/plan.h"

namespace kiln {

struct NodeCost;

enum class PartitionPolicy : uint8_t {
  kDeviceFirst,  // every node the OpenCL device supports runs there (kiln build's default)
  kCostModel,    // the cheaper backend per node, transfers included (--partition cost)
};

struct PartitionOptions {
  PartitionPolicy policy = PartitionPolicy::kDeviceFirst;
  std::set<std::string> cpu_nodes;  // node names forced onto the CPU (--cpu-nodes)
  // Host<->device transfer bandwidth in GB/s and latency in microseconds; <= 0: from the
  // device (a GPU sits behind PCIe, a CPU OpenCL device shares host memory).
  double transfer_gbps = 0;
  double transfer_latency_us = -1;
};

// Throughput model of one backend on one device, from its capabilities.
struct BackendModel {
  double gflops = 1;     // sustained arithmetic rate
  double gbps = 1;       // sustained memory bandwidth
  double launch_us = 1;  // fixed cost per node
};
BackendModel backend_model(Backend b, const DeviceCaps& device);

// Estimated time of one node on a backend: its launch cost plus the larger of its arithmetic
// and memory time.
double estimated_node_us(const BackendModel& m, const NodeCost& c);

// The cost model's estimate of one inference of `plan` as partitioned (nodes only, transfers
// not counted); compares builds of one model in different precisions.
double estimated_plan_us(const Plan& plan);

std::vector<Backend> partition_nodes(const Plan& plan, const DeviceCaps& device,
                                     const PartitionOptions& options = {});

// Sets each node's backend from partition_nodes and recomputes the segments.
void apply_partition(Plan* plan, const DeviceCaps& device, const PartitionOptions& options = {});

}  // namespace kiln
