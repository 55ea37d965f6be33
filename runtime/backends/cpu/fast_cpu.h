// The cpu device's fast path: nodes whose op has a fast kernel (oneDNN primitives, threaded
// loops: runtime/backends/cpu/dnnl_*.cpp, fast_*.cpp) run it instead of the reference kernel,
// which stays the oracle (tests compare the two) and runs everything else.
// KILN_CPU_REFERENCE=1 turns the fast path off.
//
// Three lifetimes, after oneDNN's own split:
//  - FastNodePlan, once per plan and node, shared by every context of the plan: what never
//    changes between runs, above all the weights reordered into the layout the primitive
//    wants (FP16 weights widened), so contexts share them and no run reorders them.
//  - FastKernel, once per context and node: primitives, created on first use for each input
//    shape and team size and cached.
//  - a run: FastCpu::Run sizes the thread teams by the inference's share of the cores
//    (inference_cpu_threads(), runtime/backends/cpu/cpu_threads.h) and runs the nodes.
//
// Activation layouts: oneDNN's convolutions and poolings want channels-last (NHWC) activations.
// A 4-D tensor that only fast kernels touch (produced and read only by them, not a plan
// input/output, never crossing to OpenCL, no tensor observer) is stored channels-last in its
// arena slot (same bytes, permuted), so a chain of convolutions, poolings and elementwise
// programs reorders only at its ends; every other tensor stays plain (ONNX's NCHW).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/core/tensor.h"
#include "runtime/plan/plan.h"

namespace kiln {

enum class HostLayout : uint8_t {
  kPlain = 0,         // row-major in ONNX's dim order
  kChannelsLast = 1,  // a rank-4 [N, C, H, W] tensor stored as N, H, W, C
};

// How a fast kernel meets the layout of one operand.
enum class LayoutUse : uint8_t {
  kPlain,   // plain only
  kAny,     // either (the kernel reorders where its primitive needs another)
  kFollow,  // whatever the node's first output has (elementwise programs over same-shape operands;
            // Concat and Split, whose operands differ along their axis only)
};

class FastRunContext;

struct FastRunArgs {
  const PlanNode& node;  // attributes as of this run (a dynamic plan's are re-evaluated)
  const std::vector<TensorView>& inputs;
  const std::vector<TensorView>& outputs;
  const std::vector<HostLayout>& in_layout;
  const std::vector<HostLayout>& out_layout;
  FastRunContext& ctx;
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i].data != nullptr; }
};

class FastKernel {
 public:
  virtual ~FastKernel() = default;
  virtual Status run(const FastRunArgs& a) = 0;
};

class FastNodePlan {
 public:
  virtual ~FastNodePlan() = default;
  virtual LayoutUse input_use(size_t i) const { return LayoutUse::kPlain; }
  virtual LayoutUse output_use(size_t i) const { return LayoutUse::kPlain; }
  virtual std::unique_ptr<FastKernel> instance() const = 0;
  // What `kiln profile` could show as the kernel ("onednn:conv", "fast:softmax").
  virtual const char* name() const = 0;
  // Single-thread time per output element, for kernels whose cost the plan's FLOP and byte
  // counts understate (transcendental functions): decides whether the node gets a team.
  virtual double ns_per_output() const { return 0; }
};

// Prepares `node` of `plan`. Leaves *out null (and returns OK) when the node is outside what
// the fast kernel handles, so the reference kernel runs it; errors are real failures.
using FastPrepareFn = Status (*)(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out);

class FastRegistry {
 public:
  void add(const std::string& op, FastPrepareFn fn) { ops_[op] = fn; }
  FastPrepareFn find(const std::string& op) const {
    auto it = ops_.find(op);
    return it == ops_.end() ? nullptr : it->second;
  }

 private:
  std::map<std::string, FastPrepareFn> ops_;
};
const FastRegistry& fast_registry();

// Whether KILN_CPU_REFERENCE asks for the reference kernels only.
bool cpu_reference_forced();

// The fast kernels of one plan's nodes, shared by its contexts (like DeviceWeights).
class FastCpuPlan {
 public:
  static std::shared_ptr<FastCpuPlan> get(const std::shared_ptr<const Plan>& plan);
  // The prepared node `n` (preparing it on first request), or null when it has no fast kernel.
  Status node(size_t n, std::shared_ptr<const FastNodePlan>* out);

 private:
  std::shared_ptr<const Plan> plan_;
  std::unique_ptr<Plan> widened_;  // float32 view for FP16 nodes (fast_float16.h), made on demand
  std::mutex mu_;
  std::vector<uint8_t> tried_;
  std::vector<std::shared_ptr<const FastNodePlan>> nodes_;
};

// One execution context's fast path.
class FastCpu {
 public:
  // *out stays null when the fast path is off or no CPU node of `backends` has a fast kernel.
  static Status create(const std::shared_ptr<const Plan>& plan, const std::vector<Backend>& backends,
                       std::unique_ptr<FastCpu>* out);
  ~FastCpu();

  bool handles(size_t n) const { return n < kernels_.size() && kernels_[n] != nullptr; }

  // One inference: runs its nodes on teams of the inference's share of the cores (the
  // CpuThreadShare the caller holds; default_cpu_threads() without one) and picks the tensor
  // layouts (all plain when `plain_only`, for tensor observers).
  class Run {
   public:
    Run(FastCpu* f, bool plain_only);
    ~Run();
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;

   private:
    FastCpu* f_;
    int saved_team_ = 0;
  };

  // Runs node `n`; *on_reference (when given) tells whether kiln's reference kernel ran it
  // instead of its oneDNN kernel (a non-finite input, or no primitive at this shape on this CPU).
  Status run(size_t n, const PlanNode& node, const std::vector<TensorView>& inputs,
             const std::vector<TensorView>& outputs, bool* on_reference = nullptr);

  // What runs node `n` ("onednn:convolution(winograd)", ...; nullptr for a reference kernel):
  // tests, error messages.
  const char* kernel_name(size_t n) const { return handles(n) ? plans_[n]->name() : nullptr; }

  // The layout each tensor has in this context's non-observed runs (tests, kiln profile).
  const std::vector<HostLayout>& tensor_layouts() const { return layouts_; }

 private:
  FastCpu() = default;
  void solve_layouts(const std::vector<Backend>& backends);

  std::shared_ptr<const Plan> plan_;
  std::shared_ptr<FastCpuPlan> shared_;
  std::vector<std::shared_ptr<const FastNodePlan>> plans_;
  std::vector<std::unique_ptr<FastKernel>> kernels_;
  // Nodes whose kernel could not be made at run time (Status kUnsupported): reference kernels.
  std::vector<uint8_t> reference_;
  std::vector<HostLayout> layouts_;  // by tensor
  // Nodes too small to gain from a team of threads (forking one costs more than the node):
  // they run on the calling thread alone.
  std::vector<uint8_t> one_thread_;
  int run_threads_ = 1;   // this run's share of the cores
  int team_ = 0;          // the team size set on the running thread now
  std::vector<uint8_t> finite_;  // by tensor, this run: 0 not checked, 1 finite, 2 NaN/Inf seen
  bool plain_only_ = false;
  std::unique_ptr<FastRunContext> ctx_;
  std::vector<HostLayout> in_l_, out_l_;  // scratch
};

}  // namespace kiln
