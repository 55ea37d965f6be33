#include "runtime/plan/plan_memory.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "runtime/exec/memory_plan.h"

namespace kiln {
namespace {

constexpr uint64_t kHostAlign = 64;  // as the executor's host arena

std::string tensor_desc(const Plan& p, int32_t t) {
  const PlanTensor& pt = p.tensors[t];
  return "'" + pt.name + "' " + dtype_name(pt.dtype) + " " + shape_str(pt.shape) + " (" + byte_size_str(pt.bytes()) + ")";
}

// The largest tensor alive when the sum of live bytes on `backend` peaks.
std::string peak_tensor(const Plan& p, const std::vector<Backend>& backends, Backend backend, uint64_t align) {
  uint64_t unplanned = 0;
  std::vector<int32_t> root;
  const std::vector<Lifetime> lives = tensor_lifetimes(p, backends, backend, align, &unplanned, true, &root);
  if (lives.empty()) return "";
  std::map<int32_t, uint64_t> delta;
  for (const Lifetime& l : lives) {
    delta[l.begin] += l.bytes;
    delta[l.end + 1] -= l.bytes;
  }
  uint64_t live = 0, best = 0;
  int32_t at = lives[0].begin;
  for (const auto& [t, d] : delta) {
    live += d;
    if (live > best) best = live, at = t;
  }
  const Lifetime* biggest = nullptr;
  for (const Lifetime& l : lives)
    if (l.begin <= at && at <= l.end && (!biggest || l.bytes > biggest->bytes)) biggest = &l;
  return biggest ? tensor_desc(p, biggest->tensor) : "";
}

}  // namespace

PlanMemory plan_memory(const Plan& p, const std::vector<Backend>& backends, uint64_t device_align) {
  PlanMemory m;
  m.host_weights = p.weights.size();
  m.host_activations = plan_arena(p, backends, Backend::kCpu, kHostAlign).size;
  m.host_peak = peak_tensor(p, backends, Backend::kCpu, kHostAlign);
  bool any_opencl = false;
  for (Backend b : backends) any_opencl |= b == Backend::kOpenCL;
  if (!any_opencl) return m;
  const SharedBuffersPlan dev = plan_shared_buffers(p, backends, Backend::kOpenCL, device_align);
  m.device_activations = dev.total;
  for (uint64_t s : dev.sizes) m.largest_device_buffer = std::max(m.largest_device_buffer, s);
  m.device_peak = peak_tensor(p, backends, Backend::kOpenCL, device_align);
  std::vector<uint8_t> seen(p.tensors.size(), 0);
  for (size_t i = 0; i < p.nodes.size() && i < backends.size(); ++i) {
    if (backends[i] != Backend::kOpenCL) continue;
    for (int32_t t : p.nodes[i].inputs) {
      if (t < 0 || seen[t] || p.tensors[t].kind != TensorKind::kConstant) continue;
      seen[t] = 1;
      m.device_weights += p.tensors[t].bytes();
      if (p.tensors[t].bytes() > m.largest_device_weight) {
        m.largest_device_weight = p.tensors[t].bytes();
        m.largest_device_weight_name = p.tensors[t].name;
      }
    }
  }
  return m;
}

Status check_plan_memory(const PlanMemory& need, uint64_t host_limit, const std::string& host_limit_what,
                         const DeviceCaps* device, const std::string& allow_hint) {
  const std::string hint = allow_hint.empty() ? "" : " (" + allow_hint + ")";
  const uint64_t host = need.host_activations + need.host_weights;
  if (host_limit && host > host_limit)
    return out_of_memory("the plan needs " + byte_size_str(host) + " of host memory (" +
                         byte_size_str(need.host_activations) + " of activations at the peak, largest tensor " +
                         (need.host_peak.empty() ? "-" : need.host_peak) + "; " + byte_size_str(need.host_weights) +
                         " of weights), more than the " + byte_size_str(host_limit) + " " + host_limit_what + hint);
  if (!device || device->kind != "opencl") return Status::ok();
  const std::string dev = "device '" + device->name + "'";
  const uint64_t total = need.device_activations + need.device_weights;
  if (device->global_mem_bytes && total > device->global_mem_bytes)
    return out_of_memory("the plan needs " + byte_size_str(total) + " on " + dev + " (" +
                         byte_size_str(need.device_activations) + " of activations at the peak, largest tensor " +
                         (need.device_peak.empty() ? "-" : need.device_peak) + "; " +
                         byte_size_str(need.device_weights) + " of weights), which has " +
                         byte_size_str(device->global_mem_bytes) + hint);
  if (device->max_alloc_bytes && need.largest_device_buffer > device->max_alloc_bytes)
    return out_of_memory("an activation buffer of " + byte_size_str(need.largest_device_buffer) + " (largest tensor " +
                         need.device_peak + ") exceeds the " + byte_size_str(device->max_alloc_bytes) +
                         " one allocation on " + dev + " may have (CL_DEVICE_MAX_MEM_ALLOC_SIZE)" + hint);
  if (device->max_alloc_bytes && need.largest_device_weight > device->max_alloc_bytes)
    return out_of_memory("weights '" + need.largest_device_weight_name + "' (" +
                         byte_size_str(need.largest_device_weight) + ") exceed the " +
                         byte_size_str(device->max_alloc_bytes) + " one allocation on " + dev +
                         " may have (CL_DEVICE_MAX_MEM_ALLOC_SIZE)" + hint);
  return Status::ok();
}

uint64_t host_physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(size) : 0;
}

uint64_t host_available_memory() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

std::string byte_size_str(uint64_t b) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 6) v /= 1024, ++u;
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  else std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

bool parse_byte_size(const std::string& text, uint64_t* out) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(text[i++] - '0');
  }
  if (i == 0) return false;
  int shift = 0;
  if (i < text.size()) {
    switch (text[i]) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
      case 'T': case 't': shift = 40; break;
      default: return false;
    }
    ++i;
    if (i < text.size() && (text[i] == 'B' || text[i] == 'b' || text[i] == 'i')) ++i;
    if (i < text.size() && (text[i] == 'B' || text[i] == 'b')) ++i;
    if (i != text.size()) return false;
  }
  if (shift && v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

}  // namespace kiln
