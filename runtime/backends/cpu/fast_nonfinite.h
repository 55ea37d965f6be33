// NaN/Inf through the fast path's fused activations. oneDNN's relu (alpha 0) and clip post-ops
// compute max/min with the bound as the operand a NaN loses to, so Conv+Relu would turn a NaN
// into 0 where ONNX Runtime and kiln's reference kernels keep it. A pre-activation NaN needs a
// non-finite operand, so a linear node with such an activation checks its activation operands
// and, holding a NaN or Inf, runs its reference kernel instead, on plain copies of any
// channels-last operand. The check reads each tensor once per run (the answer is kept per
// tensor: a residual read by two convolutions is scanned once), vectorized and split over the
// node's team, so it costs a fraction of a memory pass.
#pragma once
#include <vector>

#include "runtime/backends/cpu/fast_cpu.h"
#include "runtime/core/status.h"
#include "runtime/plan/plan.h"

namespace kiln {

// Whether `node` is a linear op whose fused activation oneDNN evaluates with min/max.
bool activation_drops_nan(const PlanNode& node);

// Whether any non-constant float operand of `node` holds a NaN or an infinity. `known` (by
// tensor, zeroed at the start of each run) keeps the answers: 1 finite, 2 not. `threads`: the
// team that may share the scan.
bool has_non_finite_operand(const Plan& plan, const PlanNode& node, const std::vector<TensorView>& inputs,
                            std::vector<uint8_t>* known, int threads);

// The reference kernel of `node`, operands in channels-last layout converted from and to plain.
Status run_reference_in_layouts(const PlanNode& node, const std::vector<TensorView>& inputs,
                                const std::vector<TensorView>& outputs, const std::vector<HostLayout>& in_layout,
                                const std::vector<HostLayout>& out_layout);

}  // namespace kiln
