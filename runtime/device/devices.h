// The devices kiln sees and the `--device cpu|opencl|opencl:N|auto` syntax shared by every verb
// and by kiln_context_create. OpenCL devices are numbered across all platforms in platform
// order; that index is what `opencl:N` and `kiln devices` use.
#pragma once
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/device/cl_check.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct ClDeviceInfo {
  cl_platform_id platform = nullptr;
  cl_device_id device = nullptr;
  cl_device_type type = 0;
  std::string platform_name;
  std::string platform_version;
  uint64_t base_addr_align = 128;  // bytes; sub-buffer origins must be multiples of it
  DeviceCaps caps;
};

// Enumerates once per process; no platform at all is an empty list, not an error.
const std::vector<ClDeviceInfo>& opencl_devices();

// Capabilities of the host CPU backend.
DeviceCaps cpu_device_caps();

struct ResolvedDevice {
  Backend backend = Backend::kCpu;
  int opencl_index = -1;  // valid when backend == kOpenCL
  DeviceCaps caps;
  std::string label;      // "cpu" or "opencl:0 (name)"
};

// Parses "cpu", "opencl", "opencl:N" or "auto" (empty = auto). Errors name the bad spec and,
// for a missing device, how many OpenCL devices exist.
Status resolve_device(const std::string& spec, ResolvedDevice* out);

// Capability names a device offers: "opencl", "opencl-c-1.2", each extension, ...
std::vector<std::string> device_capabilities(const DeviceCaps& caps);

}  // namespace kiln
