// What a plan needs in memory, checked against what a device (and the host) has: at build time
// (kiln build refuses a plan that cannot fit, unless told to allow it) and when a context is
// created (before anything is allocated), so an oversized plan fails with one line naming the
// memory and the tensor at the peak, not with an allocation failure or an OOM kill.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct PlanMemory {
  uint64_t host_activations = 0;      // the host arena (its peak)
  uint64_t device_activations = 0;    // device activation buffers, in total
  uint64_t largest_device_buffer = 0;
  uint64_t device_weights = 0;        // constants OpenCL nodes read (uploaded once per plan)
  uint64_t largest_device_weight = 0;
  uint64_t host_weights = 0;          // the plan's weights, held in host memory
  std::string host_peak, device_peak;  // the largest tensor alive at each peak ("'x' float32 1x3 (12 B)")
  std::string largest_device_weight_name;
};

// `device_align`: the OpenCL device's buffer alignment (ignored without OpenCL nodes).
PlanMemory plan_memory(const Plan& plan, const std::vector<Backend>& backends, uint64_t device_align);

// Refuses (kOutOfMemory) a plan whose host side exceeds `host_limit` (0: no limit) or whose
// device side exceeds `device` (global memory; every buffer within its largest allocation).
// `allow_hint` ends the message (how to allow it anyway, or how to lower it).
// `host_limit_what` says what the host limit is ("allowed", "available").
Status check_plan_memory(const PlanMemory& need, uint64_t host_limit, const std::string& host_limit_what,
                         const DeviceCaps* device, const std::string& allow_hint);

// Physical memory of the host, and what it has available now (MemAvailable); 0 when unknown.
uint64_t host_physical_memory();
uint64_t host_available_memory();

// "1.5 GiB"; parse accepts bytes or a number with K, M, G or T (binary units), e.g. "512M".
std::string byte_size_str(uint64_t bytes);
bool parse_byte_size(const std::string& text, uint64_t* out);

}  // namespace kiln
