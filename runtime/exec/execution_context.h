// Runs a plan on one device. Nodes run in plan order on their backend; a tensor is copied
// between host and device only when a node on the other backend reads it.
#pragma once
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backends/cpu/fast_cpu.h"
#include "runtime/core/status.h"
#include "runtime/core/tensor.h"
#include "runtime/device/cl_runtime.h"
#include "runtime/device/devices.h"
#include "runtime/exec/inference_thread.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/plan/plan.h"

namespace kiln {

// Backend each node runs on when the plan is executed on `device`: every node on the CPU for
// the cpu device; for an OpenCL device, the plan's own assignment when it was built for OpenCL,
// else each node the OpenCL backend supports.
std::vector<Backend> node_backends_for(const Plan& plan, const ResolvedDevice& device);

// Checks that `device` can run `plan`. Returns a kUnsupported error naming the missing
// capability, or OK with *notice set when the device differs from the plan's target.
Status check_device_compatible(const Plan& plan, const ResolvedDevice& device, std::string* notice);

class ExecutionContext {
 public:
  static Status create(std::shared_ptr<const Plan> plan, const std::string& device_spec,
                       std::unique_ptr<ExecutionContext>* out, std::string* notice);
  ~ExecutionContext();

  Status bind_input(const std::string& name, DType dtype, const Shape& shape, const void* data,
                    size_t bytes);
  Status bind_output(const std::string& name, void* data, size_t bytes);
  // Host memory for input or output `name`, sized for its largest shape and owned by the
  // context (valid until it is destroyed): page-locked on OpenCL devices, so that binding it
  // makes the transfers run at DMA speed. Write inputs there (or read outputs) and bind it.
  Status host_buffer(const std::string& name, void** data, size_t* bytes);
  // Device-resident bindings (OpenCL contexts), so that plans can pass tensors on the device:
  // input `name` is read from `mem` (a buffer of at least its size in kiln's OpenCL context of
  // this device, e.g. another context's device output); nothing is uploaded for it.
  // bind_input(name, ...) undoes it.
  Status bind_input_device(const std::string& name, cl_mem mem);
  // Output `name` stays on the device: *mem holds it after each run, until the next run starts;
  // nothing is downloaded for it. bind_output(name, ...) undoes it.
  Status output_device(const std::string& name, cl_mem* mem);
  // Dynamic plans: sets input `name`'s shape (each dynamic dim within the plan's range, every
  // other dim as built) and re-evaluates every shape and shape-dependent attribute; memory was
  // planned at the max shapes, so nothing is reallocated. Waits for enqueued inferences first.
  // bind_input calls it when given a shape other than the current one.
  Status set_input_shape(const std::string& name, const Shape& shape);
  // Current shape / byte size of tensor `t` (the plan's for static plans).
  const Shape& tensor_shape(int32_t t) const { return shape_[t]; }
  uint64_t tensor_bytes(int32_t t) const { return bytes_[t]; }
  Status run();
  // Starts one inference on the context's thread (worker_) and returns its completion event.
  // Inferences of one context run in submission order; the bound buffers must stay valid until
  // the event completes. Different contexts run concurrently.
  std::shared_ptr<InferenceEvent> enqueue();
  // Records every node and transfer of the following runs into `profiler` (nullptr: off).
  // The profiler must outlive its use; not for contexts with inferences in flight.
  void set_profiler(class Profiler* profiler) { profiler_ = profiler; }
  // Host time spent issuing OpenCL nodes (their launches, replayed or not; the device runs them
  // asynchronously) and the kernel launches issued, summed over every run of this context:
  // `kiln bench` reports the mean per launch without the profiler's markers and events.
  struct IssueTime {
    int64_t ns = 0, launches = 0;
  };
  IssueTime opencl_issue_time() const;
  // Threads the CPU nodes of each of this context's inferences use (oneDNN primitives, kiln's
  // threaded loops and GEMM); <= 0: the process default. Each inference takes a fair share of
  // it (runtime/backends/cpu/cpu_threads.h). Not for contexts with inferences in flight.
  void set_cpu_threads(int threads) { cpu_threads_ = threads > 0 ? threads : 0; }
  int cpu_threads() const { return cpu_threads_; }
  // Debugging (kiln compare --per-layer): after each node, `observer` is handed every output the
  // node wrote, in host memory, before the arena can reuse it; an error from it stops the run.
  // Slow (one blocking download per OpenCL output). Empty: off. Not for contexts with
  // inferences in flight.
  using TensorObserver = std::function<Status(int32_t tensor, const TensorView& value)>;
  void set_tensor_observer(TensorObserver observer) { observer_ = std::move(observer); }
  // Waits for every inference enqueued on this context.
  void wait_idle();
  // The cpu fast path (null when every CPU node runs its reference kernel).
  const FastCpu* fast_cpu() const { return fast_cpu_.get(); }

  const Plan& plan() const { return *plan_; }
  const ResolvedDevice& device() const { return device_; }
  const std::vector<Backend>& node_backends() const { return backends_; }
  // Peak activation memory of one inference on each side (the arenas' sizes).
  uint64_t host_arena_bytes() const { return host_arena_bytes_; }
  uint64_t device_arena_bytes() const { return dev_arena_bytes_; }

 private:
  ExecutionContext() = default;
  Status init();
  Status ensure_on(int32_t tensor, Backend b);
  Status transfer(int32_t tensor, Backend b, void* host);
  Status download_to(int32_t tensor, void* dst);
  Status run_node(size_t n);
  TensorView host_view(int32_t tensor);
  // Evaluates the plan's shape expressions at `vars` and commits them (nothing changes on error).
  Status apply_vars(const std::vector<int64_t>& vars);
  const PlanNode& node_at(size_t n) const { return dyn_nodes_.empty() ? plan_->nodes[n] : dyn_nodes_[n]; }

  std::shared_ptr<const Plan> plan_;
  ResolvedDevice device_;
  std::vector<Backend> backends_;
  // OpenCL nodes: the kernel variant each runs (the plan's choice where this device offers it).
  std::vector<KernelChoice> choices_;
  // By node: the input a variant reads packed (KernelChoice "packed_input"), and its buffer.
  std::vector<int32_t> packed_input_;
  std::vector<cl_mem> packed_mem_;
  // The flat launch list: each OpenCL node's kernel launches, recorded once (again after a
  // reshape) with their arguments set, so a run enqueues them without calling the launcher.
  // Nodes whose launcher enqueues other work (CLBlast, copies) run their launcher every time.
  struct NodeLaunches {
    bool replay = false;
    std::vector<ClRuntime::RecordedLaunch> launches;
  };
  std::vector<NodeLaunches> flat_;
  bool flat_ready_ = false;
  bool flat_enabled_ = true;  // KILN_NO_FLAT_LAUNCH=1 turns it off (tests compare both)
  Status record_launches();
  ClKernelArgs kernel_args(size_t n);
  std::string variant_notice_;  // set by init() when recorded variants fall back
  std::unique_ptr<ClRuntime> cl_;
  std::shared_ptr<const class DeviceWeights> weights_;  // shared with other contexts of the plan
  std::unique_ptr<class SubgraphExecutor> subgraphs_;   // plans with control flow only
  std::unique_ptr<FastCpu> fast_cpu_;  // oneDNN/threaded kernels of the CPU nodes

  // Host activations live in one arena at offsets from plan_arena(); device activations in
  // buffers shared by tensors with disjoint lifetimes, from plan_shared_buffers().
  std::unique_ptr<uint8_t, void (*)(void*)> host_arena_{nullptr, std::free};
  std::vector<int64_t> host_offset_;     // by tensor; -1 = not in the host arena
  std::vector<cl_mem> dev_buffers_;      // owned
  std::vector<cl_mem> dev_;              // by tensor: a weights buffer or one of dev_buffers_
  std::vector<uint64_t> dev_cap_;        // by tensor: bytes of its device buffer (checked per launch)
  uint64_t host_arena_bytes_ = 0, dev_arena_bytes_ = 0;
  std::vector<const void*> input_ptr_;   // bound input memory, by tensor index
  std::vector<void*> output_ptr_;        // bound output memory, by tensor index
  std::vector<cl_mem> planned_dev_;      // dev_ as planned (device bindings replace entries)
  std::vector<uint8_t> device_input_;    // by tensor: read from a caller's device buffer
  std::vector<uint8_t> device_output_;   // by tensor: left on the device
  struct HostBuffer {
    cl_mem mem = nullptr;  // OpenCL contexts: the page-locked buffer mapped at `data`
    void* data = nullptr;
    size_t bytes = 0;
  };
  std::map<int32_t, HostBuffer> host_buffers_;  // by tensor
  int32_t io_tensor(const std::string& name, bool output) const;
  std::vector<uint8_t> on_host_, on_dev_;  // residency during a run
  // Current shapes (dynamic plans change them on reshape; capacity stays that of the max point).
  std::vector<Shape> shape_;
  std::vector<uint64_t> bytes_;
  std::vector<PlanNode> dyn_nodes_;       // dynamic plans: nodes with attributes evaluated
  std::vector<int64_t> vars_;             // current value of each dynamic dim
  std::vector<int64_t> expr_values_;      // scratch for apply_vars
  std::vector<Shape> bound_shape_;        // shape each input was bound with
  std::vector<uint64_t> bound_bytes_;     // size each output was bound with
  class Profiler* profiler_ = nullptr;
  int64_t issue_ns_ = 0;
  int cpu_threads_ = 0;        // set_cpu_threads; 0: the process default
  bool has_cpu_nodes_ = false;  // some node runs on the cpu backend
  TensorObserver observer_;
  Status observe_outputs(size_t n);
  bool sync_each_node_ = false;  // KILN_SYNC=1
  bool device_checks_ = false;   // an OpenCL node may set the device error flag
  // Brackets device work with queue markers when profiling.
  Status marker(cl_event* ev);

  // Asynchronous inferences waiting to run on this context, drained on worker_'s thread.
  void drain();
  Status run_caught();  // run() with exceptions turned into a status
  std::mutex queue_mu_;
  std::condition_variable idle_cv_;
  std::deque<std::shared_ptr<InferenceEvent>> pending_;
  bool draining_ = false;
  InferenceThread worker_;  // last: its thread ends before the members drain() uses go
};

}  // namespace kiln
