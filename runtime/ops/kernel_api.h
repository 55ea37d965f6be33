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
struct CpuKernelArgs {
  const PlanNode& node;
  std::vector<TensorView> inputs;   // optional input left out: data == nullptr, dtype kUndefined
  std::vector<TensorView> outputs;  // allocated, shapes set
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
  int32_t node_index = -1;  // position in the plan (device error flags name the node by it)
  const Attributes& attrs() const { return node.attrs; }
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i].mem != nullptr; }
};
using ClKernelFn = Status (*)(ClKernelArgs&);
// Whether the OpenCL kernel handles this node (dtypes, attributes) on a device with `caps`.
// Null means "every node of this op".
using ClSupportsFn = bool (*)(const PlanNode&, const Plan&, const DeviceCaps&);

struct ClOp {
  ClKernelFn run = nullptr;
  ClSupportsFn supports = nullptr;
};

// ---- registries ----
// How a CPU kernel meets float16 tensors. kWidened kernels compute in float32 only: for an
// FP16 node run_cpu_kernel hands them float32 copies of the float16 inputs and rounds their
// float32 results back to half (runtime/ops/cpu_float16.cpp), which makes every such kernel
// the CPU reference and fallback of its FP16 form.
enum class CpuFloat16 { kNative, kWidened };

class CpuRegistry {
 public:
  void add(const std::string& op, CpuKernelFn fn, CpuFloat16 f16 = CpuFloat16::kNative) {
    ops_[op] = fn;
    if (f16 == CpuFloat16::kWidened) widened_[op] = true;
  }
  CpuKernelFn find(const std::string& op) const {
    auto it = ops_.find(op);
    return it == ops_.end() ? nullptr : it->second;
  }
  bool widens_float16(const std::string& op) const { return widened_.count(op) != 0; }
  const std::map<std::string, CpuKernelFn>& all() const { return ops_; }

 private:
  std::map<std::string, CpuKernelFn> ops_;
  std::map<std::string, bool> widened_;
};

class ClRegistry {
 public:
  void add(const std::string& op, ClKernelFn fn, ClSupportsFn supports = nullptr) {
    ops_[op] = ClOp{fn, supports};
  }
  const ClOp* find(const std::string& op) const {
    auto it = ops_.find(op);
    return it == ops_.end() ? nullptr : &it->second;
  }
  const std::map<std::string, ClOp>& all() const { return ops_; }

 private:
  std::map<std::string, ClOp> ops_;
};

// Filled on first use from runtime/ops/ops.def.
const CpuRegistry& cpu_registry();
const ClRegistry& opencl_registry();

// Runs the CPU kernel of `node` (also what the compiler's constant folding calls).
Status run_cpu_kernel(const PlanNode& node, const std::vector<TensorView>& inputs,
                      const std::vector<TensorView>& outputs);

// Source of an OpenCL C file embedded from kernels/ at build time (e.g. "copy" for
// kernels/copy.cl); nullptr if there is no such file.
const char* embedded_kernel_source(const std::string& name);

}  // namespace kiln
