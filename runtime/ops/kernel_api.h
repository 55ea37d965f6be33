// What an op implementation sees, on each backend, and the registries that find it by the
// runtime op name. Shapes and dtypes of every input and output are fixed by the compiler;
// outputs arrive allocated.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/core/attrs.h"
#include "runtime/core/status.h"
#include "runtime/core/tensor.h"
#include "runtime/device/cl_check.h"
#include "runtime/plan/plan.h"

namespace kiln {

class ClRuntime;

// ---- CPU ----
// Runs the subgraphs of control-flow nodes (If, Loop, Scan) for their CPU kernels; the
// executor's implementation is runtime/exec/subgraph_runner.h.
class SubgraphRunner {
 public:
  virtual ~SubgraphRunner() = default;
  // Plan::graphs[index], or nullptr when out of range.
  virtual const PlanGraph* graph(int32_t index) const = 0;
  // Runs subgraph `index` with its formal inputs bound to `inputs` and its captures to the
  // owning node's `operands` (its input views). *outputs receives views of the subgraph's
  // outputs, valid until the subgraph runs again. Dtypes and shapes are checked.
  virtual Status run(int32_t index, const std::vector<TensorView>& operands, const std::vector<TensorView>& inputs,
                     std::vector<TensorView>* outputs) = 0;
};

struct CpuKernelArgs {
  const PlanNode& node;
  std::vector<TensorView> inputs;   // optional input left out: data == nullptr, dtype kUndefined
  std::vector<TensorView> outputs;  // allocated, shapes set
  SubgraphRunner* subgraphs = nullptr;  // control-flow nodes only; null in constant folding
  const Attributes& attrs() const { return node.attrs; }
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i].data != nullptr; }
};
using CpuKernelFn = Status (*)(const CpuKernelArgs&);

// ---- OpenCL ----
struct ClTensor {
  cl_mem mem = nullptr;
  DType dtype = DType::kUndefined;
  Shape shape;
  int64_t numel() const { return shape_numel(shape); }
};

struct ClKernelArgs {
  ClRuntime& cl;
  const Plan& plan;
  const PlanNode& node;
  std::vector<ClTensor> inputs;   // optional input left out: mem == nullptr
  std::vector<ClTensor> outputs;
  // The kernel variant to run: node.choice where this device offers it, else empty (portable).
  const KernelChoice* choice = nullptr;
  int32_t node_index = -1;  // position in the plan (device error flags name the node by it)
  const Attributes& attrs() const { return node.attrs; }
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i].mem != nullptr; }
  const KernelChoice& variant() const {
    static const KernelChoice portable;
    return choice ? *choice : portable;
  }
};
using ClKernelFn = Status (*)(ClKernelArgs&);
// Whether the OpenCL kernel handles this node (dtypes, attributes) on a device with `caps`.
// Null means "every node of this op".
using ClSupportsFn = bool (*)(const PlanNode&, const Plan&, const DeviceCaps&);

// The kernel variants the op offers for this node on a device with `caps`, best first by the
// op's own cost estimate (so the compiler's default pick is the first). The portable kernel is
// always there and not listed. Null: the op has no variants. The compiler records its pick in
// PlanNode::choice (timed with `kiln build --tune`); the runtime runs it only if the device
// still lists it, and otherwise the portable kernel.
using ClVariantsFn = std::vector<KernelChoice> (*)(const PlanNode&, const Plan&, const DeviceCaps&);

// A variant may read one input packed (KernelChoice parameter "packed_input" = its index): a
// 2-D constant [K, N] stored transposed on the device, [N][Kp] with each row of K elements
// zero-padded to a multiple of kPackedRowBytes (so every row starts 16-byte aligned). The
// execution context makes it once per plan and device (DeviceWeights) and hands the kernel that
// buffer in place of the input's.
constexpr const char* kPackedInputParam = "packed_input";
constexpr size_t kPackedRowBytes = 16;
inline int64_t packed_row_elems(int64_t k, size_t elem_bytes) {
  const int64_t per = static_cast<int64_t>(kPackedRowBytes / elem_bytes);
  return (k + per - 1) / per * per;
}

struct ClOp {
  ClKernelFn run = nullptr;
  ClSupportsFn supports = nullptr;
  ClVariantsFn variants = nullptr;
};

// ---- registries ----
// How a CPU kernel meets float16 tensors. kWidened kernels compute in float32 only: for an
// FP16 node run_cpu_kernel hands them float32 copies of the float16 inputs and rounds their
// float32 results back to half (runtime/ops/cpu_float16.cpp), which makes every such kernel
// the CPU reference and fallback of its FP16 form.
enum class CpuFloat16 { kNative, kWidened };

// Operations a node performs (FLOPs; integer kernels count multiply-adds the same way), for the
// profiler and the partitioner's cost model (runtime/profile/node_cost.h).
using OpCostFn = double (*)(const Plan&, const PlanNode&);
// Whether the node may store its only output over input `input` (the memory planner's
// in-place rule, runtime/ops/in_place.h; sizes are already checked equal).
using OpInPlaceFn = bool (*)(const Plan&, const PlanNode&, size_t input);
// What the node computes in, as `kiln inspect` shows it (runtime/ops/node_precision.h).
using OpPrecisionFn = std::string (*)(const Plan&, const PlanNode&);

// A runtime op's CPU kernel and the facts about the op that hold on every backend. Every
// runtime op has a CPU kernel (the backend of last resort), so its registration is the one
// place that says them: `r.add("Conv", conv_cpu).arity(2, 1).cost(conv_cost)`.
struct CpuOp {
  CpuKernelFn run = nullptr;
  CpuFloat16 float16 = CpuFloat16::kNative;
  // Fewest inputs (present ones, from input 0) and outputs the kernels read; a plan node with
  // fewer is refused when a context is created (runtime/ops/op_arity.h). 0: checked by kernels.
  int min_inputs = 0, min_outputs = 0;
  // How many of those first min_inputs inputs may be left out (-1): ops whose leading inputs
  // are optional (Loop's trip count and condition) still need their positions.
  int optional_leading_inputs = 0;
  OpCostFn cost_fn = nullptr;          // null: one operation per output element
  OpInPlaceFn in_place_fn = nullptr;   // null: never in place
  OpPrecisionFn precision_fn = nullptr;  // null: the dtype of output 0
  // Non-zero: the kernels of every backend can also write output 0 quantized per tensor
  // (runtime/ops/quantized_output.h), its scale and zero point after this many inputs of the op's
  // own (optional ones as empty slots); compiler/passes/fuse_quantize_output.cpp then folds a
  // QuantizeLinear of that output into the node.
  size_t quantized_output_after = 0;

  CpuOp& arity(int inputs, int outputs, int optional_leading = 0) {
    min_inputs = inputs;
    min_outputs = outputs;
    optional_leading_inputs = optional_leading;
    return *this;
  }
  CpuOp& cost(OpCostFn f) {
    cost_fn = f;
    return *this;
  }
  CpuOp& in_place(OpInPlaceFn f) {
    in_place_fn = f;
    return *this;
  }
  CpuOp& precision(OpPrecisionFn f) {
    precision_fn = f;
    return *this;
  }
  CpuOp& quantized_output(size_t own_inputs) {
    quantized_output_after = own_inputs;
    return *this;
  }
};

class CpuRegistry {
 public:
  CpuOp& add(const std::string& op, CpuKernelFn fn, CpuFloat16 f16 = CpuFloat16::kNative) {
    CpuOp& e = ops_[op];
    e = CpuOp{};
    e.run = fn;
    e.float16 = f16;
    return e;
  }
  CpuKernelFn find(const std::string& op) const {
    const CpuOp* e = info(op);
    return e ? e->run : nullptr;
  }
  // The op's registration, or nullptr for an op kiln's runtime does not have.
  const CpuOp* info(const std::string& op) const {
    auto it = ops_.find(op);
    return it == ops_.end() ? nullptr : &it->second;
  }
  bool widens_float16(const std::string& op) const {
    const CpuOp* e = info(op);
    return e && e->float16 == CpuFloat16::kWidened;
  }
  const std::map<std::string, CpuOp>& all() const { return ops_; }

 private:
  std::map<std::string, CpuOp> ops_;
};

class ClRegistry {
 public:
  void add(const std::string& op, ClKernelFn fn, ClSupportsFn supports = nullptr, ClVariantsFn variants = nullptr) {
    ops_[op] = ClOp{fn, supports, variants};
  }
  const ClOp* find(const std::string& op) const {
    auto it = ops_.find(op);
    return it == ops_.end() ? nullptr : &it->second;
  }
  const std::map<std::string, ClOp>& all() const { return ops_; }

 private:
  std::map<std::string, ClOp> ops_;
};

// The variants of node `n` on `caps` (empty when its op has none or is not an OpenCL op).
std::vector<KernelChoice> opencl_variants(const PlanNode& n, const Plan& plan, const DeviceCaps& caps);
// node.choice when `caps` offers it, else the portable kernel (empty).
KernelChoice resolve_choice(const PlanNode& n, const Plan& plan, const DeviceCaps& caps);

// Filled on first use from runtime/ops/ops.def.
const CpuRegistry& cpu_registry();
const ClRegistry& opencl_registry();

// Runs the CPU kernel of `node` (also what the compiler's constant folding calls).
Status run_cpu_kernel(const PlanNode& node, const std::vector<TensorView>& inputs,
                      const std::vector<TensorView>& outputs, SubgraphRunner* subgraphs = nullptr);

// Source of an OpenCL C file embedded from kernels/ at build time (e.g. "copy" for
// kernels/copy.cl); nullptr if there is no such file.
const char* embedded_kernel_source(const std::string& name);

}  // namespace kiln
