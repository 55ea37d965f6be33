// OpenCL execution state, in two parts:
//  - ClDeviceContext: one per device per process, shared by every execution context on it
//    (thread-safe): the cl_context and the program cache. Programs are built once per process
//    per (source, options) and their binaries cached on disk, keyed by sha256 of source,
//    options, device name and driver version.
//  - ClRuntime: one per execution context (used by one thread at a time): an in-order
//    profiling-enabled queue, kernel objects (clSetKernelArg is not thread-safe) and buffers.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/device/cl_check.h"
#include "runtime/device/devices.h"

namespace kiln {

class ClDeviceContext {
 public:
  // The process-wide context of OpenCL device `index` (in opencl_devices() order), created on
  // first use and released when its last user goes away.
  static Status get(int index, std::shared_ptr<ClDeviceContext>* out);
  ~ClDeviceContext();
  ClDeviceContext(const ClDeviceContext&) = delete;
  ClDeviceContext& operator=(const ClDeviceContext&) = delete;

  cl_context context() const { return context_; }
  const ClDeviceInfo& info() const { return info_; }
  // Built program for (source, options); owned by this context.
  Status program(const std::string& source, const std::string& options, cl_program* out);

 private:
  ClDeviceContext() = default;
  Status build_program(const std::string& source, const std::string& options, cl_program* out);
  // Replaces `*prog` (built from source) by a program built from its PTX raised to sm_90a, with
  // at most `max_registers` per work-item where > 0.
  Status rebuild_for_sm90a(int max_registers, cl_program* prog);

  ClDeviceInfo info_;
  cl_context context_ = nullptr;
  std::mutex mu_;
  std::map<std::string, cl_program> programs_;  // key: sha of source+options
};

class ClRuntime {
 public:
  static Status create(std::shared_ptr<ClDeviceContext> device, std::unique_ptr<ClRuntime>* out);
  ~ClRuntime();
  ClRuntime(const ClRuntime&) = delete;
  ClRuntime& operator=(const ClRuntime&) = delete;

  cl_context context() const { return device_->context(); }
  // The queue, for work enqueued directly (CLBlast, markers). While recording it marks the
  // recording as not replayable: that work cannot be captured.
  cl_command_queue queue() {
    if (recording_) record_direct_ = true;
    return queue_;
  }
  cl_device_id device() const { return device_->info().device; }
  const ClDeviceInfo& info() const { return device_->info(); }
  const std::shared_ptr<ClDeviceContext>& device_context() const { return device_; }

  // Kernel `name` from a program built from `source` with `options`. The kernel object is owned
  // by this runtime and reused; callers set all its arguments before each enqueue.
  // Called on every launch: the lookup hashes and compares the strings in place (no copy, no
  // sha256), which only happens once, on a miss, to find or build the program.
  Status kernel(std::string_view source, std::string_view options, std::string_view name, cl_kernel* out);

  // `init`, when given, holds `bytes` bytes the buffer starts with (copied by the allocation).
  Status alloc(size_t bytes, cl_mem* out, const std::string& what, const void* init = nullptr);
  // Page-locked host memory (CL_MEM_ALLOC_HOST_PTR, mapped once): transfers from and to it run
  // at DMA speed (NVIDIA: 55 GB/s vs 4-9 GB/s from pageable memory). unmap_pinned releases it.
  Status pinned_host(size_t bytes, cl_mem* buf, void** ptr, const std::string& what);
  void unmap_pinned(cl_mem buf, void* ptr);
  Status upload(cl_mem dst, const void* src, size_t bytes, const std::string& what);
  Status download(cl_mem src, void* dst, size_t bytes, const std::string& what);
  Status copy(cl_mem src, cl_mem dst, size_t bytes, const std::string& what);
  // Waits for the queue. A failure here means the device faulted (an out-of-bounds access, a
  // lost device): the runtime is then marked lost, every later call fails fast, and the
  // destructor leaks its objects rather than calling into a driver in an undefined state.
  Status finish();
  bool lost() const { return lost_; }
  // Whether the queue records command timestamps (only the profiler's events read them). Off
  // unless asked for: a driver may do work per command for them, and nothing else needs them
  // (perf/device/launch_probe.py compares the two). Switching waits for the queue and replaces
  // it; recorded launches stay valid. KILN_PROFILING_QUEUE=1 keeps every queue profiling.
  Status set_profiling(bool on);

  // A device buffer of at least `bytes` for a kernel's temporary data (im2col columns, ...),
  // kept per `slot` and grown on demand, released with the runtime. Reusing it across nodes is
  // safe because the queue is in order; a grown buffer's old storage is freed by OpenCL once
  // the commands still using it complete.
  Status scratch(int slot, size_t bytes, cl_mem* out, const std::string& what);
  // As scratch(), but zero-filled when allocated (by the allocation itself, not by a queued
  // command, so a launch recording stays replayable): for kernels that leave it zeroed again.
  Status zeroed_scratch(int slot, size_t bytes, cl_mem* out, const std::string& what);

  // Global-size helper: rounds n up to a multiple of `local`.
  static size_t round_up(size_t n, size_t local) { return (n + local - 1) / local * local; }

  // Every kernel launch goes through here (ClLaunch::run).
  Status enqueue_kernel(cl_kernel k, cl_uint dims, const size_t* global, const size_t* local, const std::string& what);

  // Launch recording, for the execution context's flat launch list: between begin_recording()
  // and end_recording(), kernel() hands out a kernel object of its own per call (so the
  // arguments a launcher sets stay set) and enqueue_kernel() records the launch instead of
  // enqueueing it. A launcher that needs the queue itself (CLBlast, buffer copies) makes the
  // recording unusable, and runs as usual every time. Replaying a recording enqueues its
  // launches with nothing else to do: no lookups, no arguments to set. Recorded kernel objects
  // and any scratch buffer they may reference live until release_recordings() or the runtime's end.
  struct RecordedLaunch {
    cl_kernel kernel = nullptr;
    cl_uint dims = 1;
    size_t global[3] = {1, 1, 1};
    size_t local[3] = {1, 1, 1};
    bool has_local = false;
  };
  void begin_recording();
  // For a launcher whose launches depend on values on the device (it reads some back first):
  // true while recording, which it then declines (returning without launching; the recording
  // is not replayable and the node runs as usual every time, its inputs then in place).
  bool decline_recording() {
    if (recording_) record_direct_ = true;
    return recording_;
  }
  // The launches recorded since begin_recording(); false when they cannot be replayed.
  bool end_recording(std::vector<RecordedLaunch>* launches);
  // With `first` and `last` given (a profiled run), they get the events of the first and last
  // launch (the same event, retained twice, for one launch); nothing where there is none.
  Status replay(const std::vector<RecordedLaunch>& launches, cl_event* first = nullptr, cl_event* last = nullptr);
  void release_recordings();
  // Kernel launches enqueued so far (replayed ones included).
  int64_t launches() const { return launches_; }

 private:
  ClRuntime() = default;
  Status scratch_buffer(int slot, size_t bytes, bool zeroed, cl_mem* out, const std::string& what);
  // A kernel object of its own from the program for (source, options).
  Status new_kernel(std::string_view source, std::string_view options, std::string_view name, cl_kernel* out);

  std::shared_ptr<ClDeviceContext> device_;
  cl_command_queue queue_ = nullptr;
  bool profiling_ = false;
  bool lost_ = false;
  int64_t launches_ = 0;
  struct KernelEntry {
    std::string source, options, name;
    cl_kernel kernel;
  };
  std::unordered_map<size_t, std::vector<KernelEntry>> kernels_;  // by hash of source, options, name
  std::map<int, std::pair<cl_mem, size_t>> scratch_;  // slot -> buffer, size
  bool recording_ = false, record_direct_ = false;
  std::vector<RecordedLaunch> record_;
  std::vector<cl_kernel> recorded_kernels_;  // owned
  std::vector<cl_mem> retired_scratch_;      // outgrown, possibly still in a recording
};

// The folder program binaries are cached in: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else
// ~/.cache/kiln. Empty when none can be determined (the cache is then skipped).
std::string program_cache_dir();

}  // namespace kiln
