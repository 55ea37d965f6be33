#include "runtime/ops/kernel_api.h"
#include "runtime/ops/cpu_float16.h"
#include "runtime/core/fault_injection.h"

#include <new>

namespace kiln {

#define KILN_OP_FAMILY(family) void register_##family##_cpu(CpuRegistry&);
#include "runtime/ops/ops.def"
#undef KILN_OP_FAMILY
#define KILN_OP_FAMILY(family) void register_##family##_opencl(ClRegistry&);
#include "runtime/ops/ops.def"
#undef KILN_OP_FAMILY

const CpuRegistry& cpu_registry() {
  static const CpuRegistry registry = [] {
    CpuRegistry r;
#define KILN_OP_FAMILY(family) register_##family##_cpu(r);
#include "runtime/ops/ops.def"
#undef KILN_OP_FAMILY
    return r;
  }();
  return registry;
}

const ClRegistry& opencl_registry() {
  static const ClRegistry registry = [] {
    ClRegistry r;
#define KILN_OP_FAMILY(family) register_##family##_opencl(r);
#include "runtime/ops/ops.def"
#undef KILN_OP_FAMILY
    return r;
  }();
  return registry;
}

Status run_cpu_kernel(const PlanNode& node, const std::vector<TensorView>& inputs,
                      const std::vector<TensorView>& outputs) {
  CpuKernelFn fn = cpu_registry().find(node.op);
  if (!fn) return unsupported("no CPU kernel for op " + node.op);
  Status st;
  try {
    if (fault_now(FaultSite::kKernelScratch)) throw std::bad_alloc();
    st = cpu_registry().widens_float16(node.op) && has_float16(inputs, outputs)
             ? run_widened_float16(fn, node, inputs, outputs)
             : fn(CpuKernelArgs{node, inputs, outputs});
  } catch (const std::bad_alloc&) {
    // Kernels allocate scratch (im2col panels, float16 widening, index tables) per call.
    st = out_of_memory("no host memory for the CPU kernel's scratch buffers");
  }
  if (!st) return st.with_context("node '" + node.name + "' (" + node.op + ")");
  return st;
}

}  // namespace kiln
