#include "runtime/device/cl_runtime.h"

#include "runtime/core/fault_injection.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "runtime/core/alloc_stats.h"
#include "runtime/core/sha256.h"
#include "runtime/device/ptx_sm90a.h"

namespace kiln {
namespace {

bool read_file(const std::string& path, std::vector<unsigned char>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return !out->empty();
}

// Writes via a temporary file and rename so concurrent kiln processes never see half a binary.
void write_file_atomic(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) return;
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
      std::remove(tmp.c_str());
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}

void make_dirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i)
    if (i == path.size() || path[i] == '/') ::mkdir(path.substr(0, i).c_str(), 0755);
}

std::string build_log(cl_program prog, cl_device_id dev) {
  size_t n = 0;
  clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
  std::string log(n, '\0');
  if (n) clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, n, log.data(), nullptr);
  if (log.size() > 4000) log = log.substr(0, 4000) + "...";
  return log;
}

}  // namespace

std::string program_cache_dir() {
  if (const char* d = std::getenv("KILN_CACHE_DIR")) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME")) return std::string(x) + "/kiln";
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.cache/kiln";
  return "";
}

Status ClDeviceContext::get(int index, std::shared_ptr<ClDeviceContext>* out) {
  static std::mutex mu;
  static std::map<int, std::weak_ptr<ClDeviceContext>> live;
  const auto& devs = opencl_devices();
  if (index < 0 || index >= static_cast<int>(devs.size()))
    return not_found("OpenCL device " + std::to_string(index) + " does not exist");
  std::lock_guard<std::mutex> lock(mu);
  if (auto existing = live[index].lock()) {
    *out = existing;
    return Status::ok();
  }
  std::shared_ptr<ClDeviceContext> dc(new ClDeviceContext());
  const ClDeviceInfo& dev = devs[index];
  dc->info_ = dev;
  cl_int err = CL_SUCCESS;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                   reinterpret_cast<cl_context_properties>(dev.platform), 0};
  dc->context_ = clCreateContext(props, 1, &dev.device, nullptr, nullptr, &err);
  KILN_CL(err, "clCreateContext on " + dev.caps.name);
  live[index] = dc;
  *out = std::move(dc);
  return Status::ok();
}

ClDeviceContext::~ClDeviceContext() {
  for (auto& [k, v] : programs_) clReleaseProgram(v);
  if (context_) clReleaseContext(context_);
}

Status ClDeviceContext::program(const std::string& source, const std::string& options, cl_program* out) {
  const std::string key = sha256_hex(source + '\x1f' + options);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = programs_.find(key);
  if (it == programs_.end()) {
    cl_program prog = nullptr;
    KILN_TRY(build_program(source, options, &prog));
    it = programs_.emplace(key, prog).first;
  }
  *out = it->second;
  return Status::ok();
}

namespace {
bool always_profiling() {
  const char* v = std::getenv("KILN_PROFILING_QUEUE");
  return v && std::string(v) == "1";
}
}  // namespace

Status ClRuntime::create(std::shared_ptr<ClDeviceContext> device, std::unique_ptr<ClRuntime>* out) {
  std::unique_ptr<ClRuntime> rt(new ClRuntime());
  rt->device_ = std::move(device);
  rt->profiling_ = always_profiling();
  cl_int err = CL_SUCCESS;
  rt->queue_ = clCreateCommandQueue(rt->context(), rt->device(), rt->profiling_ ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  KILN_CL(err, "clCreateCommandQueue on " + rt->info().caps.name);
  *out = std::move(rt);
  return Status::ok();
}

Status ClRuntime::set_profiling(bool on) {
  on = on || always_profiling();
  if (on == profiling_) return Status::ok();
  KILN_TRY(finish());
  cl_int err = CL_SUCCESS;
  cl_command_queue q = clCreateCommandQueue(context(), device(), on ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  KILN_CL(err, std::string("clCreateCommandQueue (profiling ") + (on ? "on" : "off") + ") on " + info().caps.name);
  clReleaseCommandQueue(queue_);
  queue_ = q;
  profiling_ = on;
  return Status::ok();
}

ClRuntime::~ClRuntime() {
  if (lost_) return;
  if (queue_) clFinish(queue_);
  release_recordings();
  for (auto& [k, v] : scratch_) clReleaseMemObject(v.first);
  for (auto& [h, entries] : kernels_)
    for (auto& e : entries) clReleaseKernel(e.kernel);
  if (queue_) {
    clFinish(queue_);
    clReleaseCommandQueue(queue_);
  }
}

Status ClDeviceContext::build_program(const std::string& source, const std::string& options,
                                      cl_program* out) {
  const std::string key = sha256_hex(source + '\x1f' + options + '\x1f' + info_.caps.name + '\x1f' +
                                     info_.caps.driver_version + '\x1f' + info_.platform_version);
  const std::string dir = program_cache_dir();
  const std::string path = dir.empty() ? "" : dir + "/" + key + ".bin";
  if (fault_now(FaultSite::kProgramBuild))
    return cl_status(CL_BUILD_PROGRAM_FAILURE, "building OpenCL program on " + info_.caps.name + " (injected fault)");
  cl_int err = CL_SUCCESS;
  std::vector<unsigned char> bin;
  if (!path.empty() && read_file(path, &bin)) {
    const unsigned char* p = bin.data();
    size_t n = bin.size();
    cl_int bin_status = CL_SUCCESS;
    cl_program prog = clCreateProgramWithBinary(context_, 1, &info_.device, &n, &p, &bin_status, &err);
    if (err == CL_SUCCESS && bin_status == CL_SUCCESS &&
        clBuildProgram(prog, 1, &info_.device, options.c_str(), nullptr, nullptr) == CL_SUCCESS) {
      *out = prog;
      return Status::ok();
    }
    // A stale or damaged cache entry is rebuilt from source, never fatal.
    if (prog) clReleaseProgram(prog);
  }
  const char* src = source.c_str();
  size_t len = source.size();
  cl_program prog = clCreateProgramWithSource(context_, 1, &src, &len, &err);
  KILN_CL(err, "clCreateProgramWithSource");
  err = clBuildProgram(prog, 1, &info_.device, options.c_str(), nullptr, nullptr);
  if (err != CL_SUCCESS) {
    std::string log = build_log(prog, info_.device);
    clReleaseProgram(prog);
    return cl_status(err, "building OpenCL program on " + info_.caps.name).with_context(
        "build log:\n" + log + "\n");
  }
  if (options.find(kPtxSm90aOption) != std::string::npos) {
    const Status st = rebuild_for_sm90a(ptx_max_registers(options), &prog);
    if (!st) return st;
  }
  if (!path.empty()) {
    size_t n = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof(n), &n, nullptr) == CL_SUCCESS && n) {
      std::vector<unsigned char> b(n);
      unsigned char* bp = b.data();
      if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof(bp), &bp, nullptr) == CL_SUCCESS) {
        make_dirs(dir);
        write_file_atomic(path, b);
      }
    }
  }
  *out = prog;
  return Status::ok();
}

Status ClDeviceContext::rebuild_for_sm90a(int max_registers, cl_program* prog) {
  // The program's PTX, opened up (runtime/device/ptx_sm90a.h), built again from that binary.
  const std::string what = "raising an OpenCL program to sm_90a on " + info_.caps.name;
  auto fail = [&](Status st) {
    clReleaseProgram(*prog);
    *prog = nullptr;
    return st.with_context(what);
  };
  size_t n = 0;
  cl_int err = clGetProgramInfo(*prog, CL_PROGRAM_BINARY_SIZES, sizeof(n), &n, nullptr);
  if (err != CL_SUCCESS || n == 0) return fail(cl_status(err == CL_SUCCESS ? CL_INVALID_BINARY : err, "clGetProgramInfo(BINARY_SIZES)"));
  std::string ptx(n, '\0');
  unsigned char* bp = reinterpret_cast<unsigned char*>(ptx.data());
  err = clGetProgramInfo(*prog, CL_PROGRAM_BINARIES, sizeof(bp), &bp, nullptr);
  if (err != CL_SUCCESS) return fail(cl_status(err, "clGetProgramInfo(BINARIES)"));
  while (!ptx.empty() && ptx.back() == '\0') ptx.pop_back();
  std::string patched;
  const Status st = ptx_for_sm90a(ptx, max_registers, &patched);
  if (!st) return fail(st);
  clReleaseProgram(*prog);
  *prog = nullptr;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(patched.c_str());
  size_t len = patched.size() + 1;
  cl_int bin_status = CL_SUCCESS;
  cl_program rebuilt = clCreateProgramWithBinary(context_, 1, &info_.device, &len, &p, &bin_status, &err);
  if (err != CL_SUCCESS || bin_status != CL_SUCCESS) {
    if (rebuilt) clReleaseProgram(rebuilt);
    return cl_status(err != CL_SUCCESS ? err : bin_status, "clCreateProgramWithBinary(sm_90a PTX)").with_context(what);
  }
  err = clBuildProgram(rebuilt, 1, &info_.device, "", nullptr, nullptr);
  if (err != CL_SUCCESS) {
    const std::string log = build_log(rebuilt, info_.device);
    clReleaseProgram(rebuilt);
    return cl_status(err, what).with_context("build log:\n" + log + "\n");
  }
  *prog = rebuilt;
  return Status::ok();
}

Status ClRuntime::new_kernel(std::string_view source, std::string_view options, std::string_view name,
                             cl_kernel* out) {
  cl_program prog = nullptr;
  KILN_TRY(device_->program(std::string(source), std::string(options), &prog));
  cl_int err = CL_SUCCESS;
  const std::string kname(name);
  *out = clCreateKernel(prog, kname.c_str(), &err);
  KILN_CL(err, "clCreateKernel(" + kname + ")");
  return Status::ok();
}

Status ClRuntime::kernel(std::string_view source, std::string_view options, std::string_view name,
                         cl_kernel* out) {
  if (recording_) {
    KILN_TRY(new_kernel(source, options, name, out));
    recorded_kernels_.push_back(*out);
    return Status::ok();
  }
  const std::hash<std::string_view> h;
  const size_t key = h(source) ^ (h(options) * 0x9e3779b97f4a7c15ull) ^ (h(name) * 0xc2b2ae3d27d4eb4full);
  std::vector<KernelEntry>& bucket = kernels_[key];
  for (const KernelEntry& e : bucket)
    if (e.name == name && e.options == options && e.source == source) {
      *out = e.kernel;
      return Status::ok();
    }
  KILN_TRY(new_kernel(source, options, name, out));
  bucket.push_back({std::string(source), std::string(options), std::string(name), *out});
  return Status::ok();
}

Status ClRuntime::alloc(size_t bytes, cl_mem* out, const std::string& what, const void* init) {
  const DeviceCaps& caps = info().caps;
  if (caps.max_alloc_bytes && bytes > caps.max_alloc_bytes)
    return out_of_memory(what + " needs a " + std::to_string(bytes) + "-byte buffer, larger than the " +
                         std::to_string(caps.max_alloc_bytes) + " bytes " + caps.name +
                         " allows in one buffer (CL_DEVICE_MAX_MEM_ALLOC_SIZE)");
  cl_int err = CL_SUCCESS;
  // Zero-size tensors still get a 1-byte buffer so kernels always receive a valid cl_mem.
  const bool copy = init && bytes;
  const cl_mem_flags flags = CL_MEM_READ_WRITE | (copy ? CL_MEM_COPY_HOST_PTR : 0);
  *out = fault_now(FaultSite::kDeviceAlloc)
             ? (err = CL_MEM_OBJECT_ALLOCATION_FAILURE, nullptr)
             : clCreateBuffer(context(), flags, bytes ? bytes : 1, copy ? const_cast<void*>(init) : nullptr, &err);
  count_runtime_allocation();
  KILN_CL(err, "allocating " + std::to_string(bytes) + " bytes for " + what);
  return Status::ok();
}

Status ClRuntime::pinned_host(size_t bytes, cl_mem* buf, void** ptr, const std::string& what) {
  cl_int err = CL_SUCCESS;
  *buf = clCreateBuffer(context(), CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes ? bytes : 1, nullptr, &err);
  count_runtime_allocation();
  KILN_CL(err, "allocating " + std::to_string(bytes) + " bytes of page-locked host memory for " + what);
  *ptr = clEnqueueMapBuffer(queue_, *buf, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, bytes ? bytes : 1, 0, nullptr,
                            nullptr, &err);
  if (err != CL_SUCCESS) {
    clReleaseMemObject(*buf);
    *buf = nullptr;
    return cl_status(err, "mapping the page-locked host memory for " + what);
  }
  return Status::ok();
}

void ClRuntime::unmap_pinned(cl_mem buf, void* ptr) {
  if (!buf) return;
  if (!lost_ && clEnqueueUnmapMemObject(queue_, buf, ptr, 0, nullptr, nullptr) == CL_SUCCESS) clFinish(queue_);
  clReleaseMemObject(buf);
}

Status ClRuntime::enqueue_kernel(cl_kernel k, cl_uint dims, const size_t* global, const size_t* local,
                                 const std::string& what) {
  if (recording_) {
    RecordedLaunch r;
    r.kernel = k;
    r.dims = dims;
    for (cl_uint i = 0; i < dims && i < 3; ++i) {
      r.global[i] = global[i];
      if (local) r.local[i] = local[i];
    }
    r.has_local = local != nullptr;
    if (dims > 3) record_direct_ = true;
    // A kernel object launched twice holds only its last arguments: such a launcher cannot be
    // replayed (it must fetch the kernel per launch).
    for (const RecordedLaunch& e : record_)
      if (e.kernel == k) record_direct_ = true;
    record_.push_back(r);
    return Status::ok();
  }
  ++launches_;
  KILN_CL(fault_now(FaultSite::kKernelLaunch)
              ? CL_OUT_OF_RESOURCES
              : clEnqueueNDRangeKernel(queue_, k, dims, nullptr, global, local, 0, nullptr, nullptr),
          "enqueueing kernel " + what);
  return Status::ok();
}

void ClRuntime::begin_recording() {
  recording_ = true;
  record_direct_ = false;
  record_.clear();
}

bool ClRuntime::end_recording(std::vector<RecordedLaunch>* launches) {
  recording_ = false;
  if (record_direct_) {
    launches->clear();
    return false;
  }
  *launches = std::move(record_);
  record_.clear();
  return true;
}

Status ClRuntime::replay(const std::vector<RecordedLaunch>& launches, cl_event* first, cl_event* last) {
  launches_ += static_cast<int64_t>(launches.size());
  const bool events = first && last && !launches.empty();
  if (first) *first = nullptr;
  if (last) *last = nullptr;
  for (size_t i = 0; i < launches.size(); ++i) {
    const RecordedLaunch& r = launches[i];
    cl_event* ev = !events ? nullptr : i == 0 ? first : i + 1 == launches.size() ? last : nullptr;
    KILN_CL(fault_now(FaultSite::kKernelLaunch)
                ? CL_OUT_OF_RESOURCES
                : clEnqueueNDRangeKernel(queue_, r.kernel, r.dims, nullptr, r.global, r.has_local ? r.local : nullptr, 0,
                                         nullptr, ev),
            "enqueueing a recorded kernel launch");
  }
  if (events && launches.size() == 1) {
    KILN_CL(clRetainEvent(*first), "retaining a recorded launch's event");
    *last = *first;
  }
  return Status::ok();
}

void ClRuntime::release_recordings() {
  for (cl_kernel k : recorded_kernels_) clReleaseKernel(k);
  recorded_kernels_.clear();
  for (cl_mem m : retired_scratch_) clReleaseMemObject(m);
  retired_scratch_.clear();
}

Status ClRuntime::upload(cl_mem dst, const void* src, size_t bytes, const std::string& what) {
  if (recording_) record_direct_ = true;
  if (bytes == 0) return Status::ok();
  KILN_CL(clEnqueueWriteBuffer(queue_, dst, CL_FALSE, 0, bytes, src, 0, nullptr, nullptr),
          "uploading " + what);
  return Status::ok();
}

Status ClRuntime::download(cl_mem src, void* dst, size_t bytes, const std::string& what) {
  if (recording_) record_direct_ = true;
  if (bytes == 0) return Status::ok();
  KILN_CL(clEnqueueReadBuffer(queue_, src, CL_TRUE, 0, bytes, dst, 0, nullptr, nullptr),
          "downloading " + what);
  return Status::ok();
}

Status ClRuntime::copy(cl_mem src, cl_mem dst, size_t bytes, const std::string& what) {
  if (recording_) record_direct_ = true;
  if (bytes == 0) return Status::ok();
  KILN_CL(clEnqueueCopyBuffer(queue_, src, dst, 0, 0, bytes, 0, nullptr, nullptr), "copying " + what);
  return Status::ok();
}

Status ClRuntime::scratch(int slot, size_t bytes, cl_mem* out, const std::string& what) {
  return scratch_buffer(slot, bytes, false, out, what);
}

Status ClRuntime::zeroed_scratch(int slot, size_t bytes, cl_mem* out, const std::string& what) {
  return scratch_buffer(slot, bytes, true, out, what);
}

Status ClRuntime::scratch_buffer(int slot, size_t bytes, bool zeroed, cl_mem* out, const std::string& what) {
  auto& s = scratch_[slot];
  if (s.first && s.second >= bytes) {
    *out = s.first;
    return Status::ok();
  }
  // A recorded launch may still name the outgrown buffer: it lives until the recordings go.
  if (s.first) retired_scratch_.push_back(s.first);
  s = {nullptr, 0};
  const std::vector<uint8_t> zeros(zeroed ? bytes : 0, 0);
  KILN_TRY(alloc(bytes, &s.first, "scratch for " + what, zeroed ? zeros.data() : nullptr));
  s.second = bytes;
  *out = s.first;
  return Status::ok();
}

Status ClRuntime::finish() {
  if (lost_) return device_error("the OpenCL device faulted earlier; create a new context");
  const cl_int err = clFinish(queue_);
  if (err != CL_SUCCESS) {
    lost_ = true;
    return cl_status(err, "waiting for the device (a kernel faulted or the device was lost)");
  }
  return Status::ok();
}

}  // namespace kiln
