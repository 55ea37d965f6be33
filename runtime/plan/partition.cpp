#include "runtime/plan/partition.h"

#include <algorithm>
#include <thread>

#include "runtime/ops/kernel_api.h"
#include "runtime/profile/cpu_speed.h"
#include "runtime/profile/node_cost.h"

namespace kiln {
namespace {

// CL_DEVICE_TYPE_GPU / _ACCELERATOR, as recorded in the plan (runtime/device/devices.cpp): PoCL's
// CPU device is CL_DEVICE_TYPE_CPU and gets the CPU-like model.
bool is_gpu_like(const DeviceCaps& d) {
  constexpr uint64_t kGpu = 1u << 2, kAccelerator = 1u << 3;
  return (d.device_type & (kGpu | kAccelerator)) != 0;
}

}  // namespace

BackendModel backend_model(Backend b, const DeviceCaps& device) {
  const double cores = std::max(1u, std::thread::hardware_concurrency());
  BackendModel m;
  if (b == Backend::kCpu) {
    // The cpu device's oneDNN kernels, as measured on this host (runtime/profile/cpu_speed.h).
    const CpuSpeed& s = measured_cpu_speed();
    m.gflops = s.gflops;
    m.gbps = s.gbps;
    m.launch_us = s.launch_us;
  } else if (is_gpu_like(device)) {
    m.gflops = 100.0 * std::max(1u, device.compute_units);
    m.gbps = 300;
    m.launch_us = 8;
  } else {
    m.gflops = 12 * std::max(1u, device.compute_units);
    m.gbps = 10;
    m.launch_us = 30;
  }
  return m;
}

double estimated_node_us(const BackendModel& m, const NodeCost& c) {
  return m.launch_us + std::max(c.flops / (m.gflops * 1e3), c.bytes / (m.gbps * 1e3));
}

double estimated_plan_us(const Plan& plan) {
  double us = 0;
  for (const PlanNode& n : plan.nodes) us += estimated_node_us(backend_model(n.backend, plan.target), node_cost(plan, n));
  return us;
}

std::vector<Backend> partition_nodes(const Plan& plan, const DeviceCaps& device, const PartitionOptions& options) {
  std::vector<Backend> out(plan.nodes.size(), Backend::kCpu);
  if (device.kind != "opencl") return out;
  const BackendModel cpu = backend_model(Backend::kCpu, device), cl = backend_model(Backend::kOpenCL, device);
  const bool gpu = is_gpu_like(device);
  const double xfer_gbps = options.transfer_gbps > 0 ? options.transfer_gbps : (gpu ? 12.0 : 8.0);
  const double xfer_us = options.transfer_latency_us >= 0 ? options.transfer_latency_us : (gpu ? 10.0 : 5.0);
  auto node_us = estimated_node_us;
  auto transfer_us = [&](int32_t t) { return xfer_us + plan.tensors[t].bytes() / (xfer_gbps * 1e3); };

  // Where each tensor's bytes are valid so far: bit 0 host, bit 1 device. Inputs start on the
  // host; constants live on both (uploaded once per context, not per inference).
  std::vector<uint8_t> where(plan.tensors.size(), 0);
  for (size_t t = 0; t < plan.tensors.size(); ++t)
    where[t] = plan.tensors[t].kind == TensorKind::kConstant ? 3 : plan.tensors[t].kind == TensorKind::kInput ? 1 : 0;
  std::vector<uint8_t> read_by_host(plan.tensors.size(), 0);
  for (int32_t t : plan.outputs) read_by_host[t] = 1;

  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    const PlanNode& n = plan.nodes[i];
    const ClOp* op = opencl_registry().find(n.op);
    bool forced_cpu = options.cpu_nodes.count(n.name) != 0;
    for (const std::string& f : n.fused) forced_cpu |= options.cpu_nodes.count(f) != 0;
    const bool cl_ok = op && (!op->supports || op->supports(n, plan, device)) && !forced_cpu;
    Backend pick = Backend::kCpu;
    if (cl_ok) {
      const NodeCost c = node_cost(plan, n);
      double t_cpu = node_us(cpu, c), t_cl = node_us(cl, c);
      for (int32_t t : n.inputs) {
        if (t < 0) continue;
        if (!(where[t] & 1)) t_cpu += transfer_us(t);
        if (!(where[t] & 2)) t_cl += transfer_us(t);
      }
      // Plan outputs end on the host: producing one on the device costs its download.
      for (int32_t t : n.outputs)
        if (read_by_host[t]) t_cl += transfer_us(t);
      pick = options.policy == PartitionPolicy::kDeviceFirst || t_cl <= t_cpu ? Backend::kOpenCL : Backend::kCpu;
    }
    out[i] = pick;
    const uint8_t bit = pick == Backend::kCpu ? 1 : 2;
    for (int32_t t : n.inputs)
      if (t >= 0) where[t] |= bit;
    for (int32_t t : n.outputs) where[t] = bit;
  }
  return out;
}

void apply_partition(Plan* plan, const DeviceCaps& device, const PartitionOptions& options) {
  std::vector<Backend> b = partition_nodes(*plan, device, options);
  for (size_t i = 0; i < b.size(); ++i) plan->nodes[i].backend = b[i];
  plan->segments = compute_segments(*plan);
}

}  // namespace kiln
