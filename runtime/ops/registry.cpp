#include "runtime/ops/kernel_api.h"
#include "runtime/ops/cpu_float16.h"
#include "runtime/core/fault_injection.h"

#include <new>

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

std::vector<KernelChoice> opencl_variants(const PlanNode& n, const Plan& plan, const DeviceCaps& caps) {
  const ClOp* op = opencl_registry().find(n.op);
  if (!op || !op->variants || (op->supports && !op->supports(n, plan, caps))) return {};
  return op->variants(n, plan, caps);
}

KernelChoice resolve_choice(const PlanNode& n, const Plan& plan, const DeviceCaps& caps) {
  if (n.choice.empty()) return {};
  for (const KernelChoice& c : opencl_variants(n, plan, caps))
    if (c == n.choice) return c;
  return {};
}

Status run_cpu_kernel(const PlanNode& node, const std::vector<TensorView>& inputs,
                      const std::vector<TensorView>& outputs, SubgraphRunner* subgraphs) {
  CpuKernelFn fn = cpu_registry().find(node.op);
  if (!fn) return unsupported("no CPU kernel for op " + node.op);
  Status st;
  try {
    if (fault_now(FaultSite::kKernelScratch)) throw std::bad_alloc();
    st = cpu_registry().widens_float16(node.op) && has_float16(inputs, outputs)
             ? run_widened_float16(fn, node, inputs, outputs)
             : fn(CpuKernelArgs{node, inputs, outputs, subgraphs});
  } catch (const std::bad_alloc&) {
    // Kernels allocate scratch (im2col panels, float16 widening, control-flow state, index
    // tables) per call, sized by the plan's shapes, which may be far beyond this host's memory.
    st = out_of_memory("no host memory for the CPU kernel's scratch buffers");
  }
  if (!st) return st.with_context("node '" + node.name + "' (" + node.op + ")");
  return st;
}

}  // namespace kiln
