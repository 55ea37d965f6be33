// One OpenCL device opened for execution: context, in-order queue, kernel cache, buffers.
// Programs are built once per process per (source, options, device) and their binaries are
// cached on disk, keyed by sha256 of source, options, device name and driver version.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/device/cl_check.h"
#include "runtime/device/devices.h"

namespace kiln {

class ClRuntime {
 public:
  static Status create(const ClDeviceInfo& dev, std::unique_ptr<ClRuntime>* out);
  ~ClRuntime();
  ClRuntime(const ClRuntime&) = delete;
  ClRuntime& operator=(const ClRuntime&) = delete;

  cl_context context() const { return context_; }
  cl_command_queue queue() const { return queue_; }
  cl_device_id device() const { return info_.device; }
  const ClDeviceInfo& info() const { return info_; }

  // Kernel `name` from a program built from `source` with `options`. The kernel object is owned
  // by this runtime and reused; callers set all its arguments before each enqueue.
  Status kernel(const std::string& source, const std::string& options, const std::string& name,
                cl_kernel* out);

  Status alloc(size_t bytes, cl_mem* out, const std::string& what);
  Status upload(cl_mem dst, const void* src, size_t bytes, const std::string& what);
  Status download(cl_mem src, void* dst, size_t bytes, const std::string& what);
  Status copy(cl_mem src, cl_mem dst, size_t bytes, const std::string& what);
  Status finish();

  // A device buffer of at least `bytes` for a kernel's temporary data (im2col columns, ...),
  // kept per `slot` and grown on demand, released with the runtime. Reusing it across nodes is
  // safe because the queue is in order; a grown buffer's old storage is freed by OpenCL once
  // the commands still using it complete.
  Status scratch(int slot, size_t bytes, cl_mem* out, const std::string& what);

  // Global-size helper: rounds n up to a multiple of `local`.
  static size_t round_up(size_t n, size_t local) { return (n + local - 1) / local * local; }

 private:
  ClRuntime() = default;
  Status build_program(const std::string& source, const std::string& options, cl_program* out);

  ClDeviceInfo info_;
  cl_context context_ = nullptr;
  cl_command_queue queue_ = nullptr;
  std::map<std::string, cl_program> programs_;  // key: sha of source+options
  std::map<std::string, cl_kernel> kernels_;    // key: program key + kernel name
  std::map<int, std::pair<cl_mem, size_t>> scratch_;  // slot -> buffer, size
};

// The folder program binaries are cached in: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else
// ~/.cache/kiln. Empty when none can be determined (the cache is then skipped).
std::string program_cache_dir();

}  // namespace kiln
