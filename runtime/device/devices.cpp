#include "runtime/device/devices.h"

#include <algorithm>
#include <sstream>
#include <thread>

namespace kiln {
namespace {

std::string platform_str(cl_platform_id p, cl_platform_info what) {
  size_t n = 0;
  if (clGetPlatformInfo(p, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "";
  std::string s(n, '\0');
  if (clGetPlatformInfo(p, what, n, s.data(), nullptr) != CL_SUCCESS) return "";
  s.resize(s.find('\0') == std::string::npos ? n : s.find('\0'));
  return s;
}

std::string device_str(cl_device_id d, cl_device_info what) {
  size_t n = 0;
  if (clGetDeviceInfo(d, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "";
  std::string s(n, '\0');
  if (clGetDeviceInfo(d, what, n, s.data(), nullptr) != CL_SUCCESS) return "";
  s.resize(s.find('\0') == std::string::npos ? n : s.find('\0'));
  return s;
}

template <typename T>
T device_val(cl_device_id d, cl_device_info what) {
  T v{};
  if (clGetDeviceInfo(d, what, sizeof(T), &v, nullptr) != CL_SUCCESS) return T{};
  return v;
}

std::vector<ClDeviceInfo> enumerate() {
  std::vector<ClDeviceInfo> out;
  cl_uint np = 0;
  // No ICD or no platform: kiln still runs on the CPU backend.
  if (clGetPlatformIDs(0, nullptr, &np) != CL_SUCCESS || np == 0) return out;
  std::vector<cl_platform_id> ps(np);
  if (clGetPlatformIDs(np, ps.data(), nullptr) != CL_SUCCESS) return out;
  for (cl_platform_id p : ps) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS || nd == 0) continue;
    std::vector<cl_device_id> ds(nd);
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, nd, ds.data(), nullptr) != CL_SUCCESS) continue;
    for (cl_device_id d : ds) {
      ClDeviceInfo info;
      info.platform = p;
      info.device = d;
      info.type = device_val<cl_device_type>(d, CL_DEVICE_TYPE);
      info.platform_name = platform_str(p, CL_PLATFORM_NAME);
      info.platform_version = platform_str(p, CL_PLATFORM_VERSION);
      info.base_addr_align = std::max<uint64_t>(device_val<cl_uint>(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN) / 8, 64);
      DeviceCaps& c = info.caps;
      c.kind = "opencl";
      c.device_type = info.type;
      c.name = device_str(d, CL_DEVICE_NAME);
      c.vendor = device_str(d, CL_DEVICE_VENDOR);
      c.driver_version = device_str(d, CL_DRIVER_VERSION);
      c.opencl_c_version = device_str(d, CL_DEVICE_OPENCL_C_VERSION);
      std::istringstream ext(device_str(d, CL_DEVICE_EXTENSIONS));
      for (std::string e; ext >> e;) c.extensions.push_back(e);
      c.global_mem_bytes = device_val<cl_ulong>(d, CL_DEVICE_GLOBAL_MEM_SIZE);
      c.max_alloc_bytes = device_val<cl_ulong>(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
      c.local_mem_bytes = device_val<cl_ulong>(d, CL_DEVICE_LOCAL_MEM_SIZE);
      c.compute_units = device_val<cl_uint>(d, CL_DEVICE_MAX_COMPUTE_UNITS);
      if (std::find(c.extensions.begin(), c.extensions.end(), "cl_nv_device_attribute_query") != c.extensions.end()) {
        // CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV / _MINOR_NV (cl_ext.h names them only with the NV headers).
        constexpr cl_device_info kMajorNV = 0x4000, kMinorNV = 0x4001;
        c.compute_capability = device_val<cl_uint>(d, kMajorNV) * 10 + device_val<cl_uint>(d, kMinorNV);
      }
      out.push_back(std::move(info));
    }
  }
  return out;
}

}  // namespace

const std::vector<ClDeviceInfo>& opencl_devices() {
  static const std::vector<ClDeviceInfo> devices = enumerate();
  return devices;
}

DeviceCaps cpu_device_caps() {
  DeviceCaps c;
  c.kind = "cpu";
  c.name = "host cpu";
  c.compute_units = std::max(1u, std::thread::hardware_concurrency());
  return c;
}

Status resolve_device(const std::string& spec_in, ResolvedDevice* out) {
  const std::string spec = spec_in.empty() ? "auto" : spec_in;
  const auto& cls = opencl_devices();
  auto use_opencl = [&](int i) {
    out->backend = Backend::kOpenCL;
    out->opencl_index = i;
    out->caps = cls[i].caps;
    out->label = "opencl:" + std::to_string(i) + " (" + cls[i].caps.name + ")";
  };
  if (spec == "cpu") {
    out->backend = Backend::kCpu;
    out->opencl_index = -1;
    out->caps = cpu_device_caps();
    out->label = "cpu";
    return Status::ok();
  }
  if (spec == "auto") {
    for (size_t i = 0; i < cls.size(); ++i)
      if (cls[i].type & CL_DEVICE_TYPE_GPU) {
        use_opencl(static_cast<int>(i));
        return Status::ok();
      }
    if (!cls.empty()) {
      use_opencl(0);
      return Status::ok();
    }
    return resolve_device("cpu", out);
  }
  if (spec == "opencl" || spec.rfind("opencl:", 0) == 0) {
    int idx = 0;
    if (spec.size() > 7) {
      const std::string n = spec.substr(7);
      if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 6)
        return invalid_argument("bad device '" + spec + "': expected opencl:N with N a number");
      idx = std::stoi(n);
    }
    if (cls.empty())
      return not_found("device '" + spec + "': no OpenCL device found (is an OpenCL ICD such as "
                       "pocl-opencl-icd installed?)");
    if (idx >= static_cast<int>(cls.size()))
      return not_found("device '" + spec + "': only " + std::to_string(cls.size()) +
                       " OpenCL device(s) found (see `kiln devices`)");
    use_opencl(idx);
    return Status::ok();
  }
  return invalid_argument("bad device '" + spec + "': expected cpu, opencl, opencl:N or auto");
}

std::vector<std::string> device_capabilities(const DeviceCaps& caps) {
  std::vector<std::string> out;
  if (caps.kind != "opencl") return out;
  out.push_back("opencl");
  out.insert(out.end(), caps.extensions.begin(), caps.extensions.end());
  return out;
}

}  // namespace kiln
