#include "runtime/plan/partition.h"

#include "runtime/ops/kernel_api.h"

namespace kiln {

std::vector<Backend> partition_nodes(const Plan& plan, const DeviceCaps& device) {
  std::vector<Backend> out(plan.nodes.size(), Backend::kCpu);
  if (device.kind != "opencl") return out;
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    const PlanNode& n = plan.nodes[i];
    const ClOp* op = opencl_registry().find(n.op);
    if (op && (!op->supports || op->supports(n, plan, device))) out[i] = Backend::kOpenCL;
  }
  return out;
}

void apply_partition(Plan* plan, const DeviceCaps& device) {
  std::vector<Backend> b = partition_nodes(*plan, device);
  for (size_t i = 0; i < b.size(); ++i) plan->nodes[i].backend = b[i];
  plan->segments = compute_segments(*plan);
}

}  // namespace kiln
