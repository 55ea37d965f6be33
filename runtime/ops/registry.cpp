#include "runtime/ops/kernel_api.h"
#include "runtime/backends/quantize_per_tensor.h"
#include "runtime/ops/cpu_float16.h"
#include "runtime/ops/quantized_output.h"
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

namespace {

Status run_float_kernel(CpuKernelFn fn, const PlanNode& node, const std::vector<TensorView>& inputs,
                        const std::vector<TensorView>& outputs, SubgraphRunner* subgraphs) {
  return cpu_registry().widens_float16(node.op) && has_float16(inputs, outputs)
             ? run_widened_float16(fn, node, inputs, outputs)
             : fn(CpuKernelArgs{node, inputs, outputs, subgraphs});
}

// A node that also writes output 0 quantized (runtime/ops/quantized_output.h): its kernel runs
// without the copy, which is then quantized from output 0 as stored (float16 rounding included),
// as the QuantizeLinear it replaces would have.
Status run_then_quantize(CpuKernelFn fn, const PlanNode& node, const QuantizedOutput& q,
                         const std::vector<TensorView>& inputs, const std::vector<TensorView>& outputs,
                         SubgraphRunner* subgraphs) {
  const std::vector<TensorView> own_in(inputs.begin(), inputs.begin() + static_cast<std::ptrdiff_t>(q.scale_input));
  const std::vector<TensorView> own_out(outputs.begin(), outputs.begin() + static_cast<std::ptrdiff_t>(q.output));
  KILN_TRY(run_float_kernel(fn, node, own_in, own_out, subgraphs));
  return quantize_per_tensor_cpu(node.op + " '" + node.name + "'", outputs[0], inputs[q.scale_input],
                                 inputs[q.zero_point_input], q.saturate, outputs[q.output]);
}

}  // namespace

Status run_cpu_kernel(const PlanNode& node, const std::vector<TensorView>& inputs,
                      const std::vector<TensorView>& outputs, SubgraphRunner* subgraphs) {
  const CpuOp* op = cpu_registry().info(node.op);
  if (!op || !op->run) return unsupported("no CPU kernel for op " + node.op);
  QuantizedOutput q;
  const bool quantized = op->quantized_output_after && quantized_output(node, &q);
  Status st;
  try {
    if (fault_now(FaultSite::kKernelScratch)) throw std::bad_alloc();
    st = quantized ? run_then_quantize(op->run, node, q, inputs, outputs, subgraphs)
                   : run_float_kernel(op->run, node, inputs, outputs, subgraphs);
  } catch (const std::bad_alloc&) {
    // Kernels allocate scratch (im2col panels, float16 widening, control-flow state, index
    // tables) per call, sized by the plan's shapes, which may be far beyond this host's memory.
    st = out_of_memory("no host memory for the CPU kernel's scratch buffers");
  }
  if (!st) return st.with_context("node '" + node.name + "' (" + node.op + ")");
  return st;
}

}  // namespace kiln
