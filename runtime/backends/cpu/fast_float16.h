// FP16 nodes on the cpu fast path. The reference kernels of ops registered CpuFloat16::kWidened
// compute float16 nodes in float32 (runtime/ops/cpu_float16.h), widening every operand, weights
// included, on every run. The fast path instead prepares such a node against a float32 view of
// the plan (its float16 constants widened once, at plan load) and, per run, widens only the
// activations it reads and rounds its outputs back to half, like the reference.
#pragma once
#include <memory>

#include "runtime/backends/cpu/fast_cpu.h"

namespace kiln {

// Whether node `n` has float16 operands and an op whose kernels compute float16 in float32.
bool widens_float16(const Plan& plan, const PlanNode& n);

// `plan` with every float16 tensor read or written by the nodes `widens_float16` accepts turned
// float32, their constants widened (other constants carry no data: no widened node reads them).
std::unique_ptr<Plan> widened_plan(const Plan& plan);

// Wraps `inner`, prepared on the widened plan, for the float16 node: plain layouts, operands
// widened and outputs narrowed around each run.
std::shared_ptr<const FastNodePlan> float16_node(std::shared_ptr<const FastNodePlan> inner);

}  // namespace kiln
