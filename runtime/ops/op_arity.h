// The fewest inputs and outputs each runtime op reads (CpuOp::arity, registered with its CPU
// kernel), so a plan from an untrusted file whose checksum is valid but whose nodes are short of
// operands is refused when a context is created instead of making a kernel read past its
// argument list. Extra operands are allowed (optional
// inputs, fused residuals).
#pragma once
#include "runtime/core/status.h"
#include "runtime/plan/plan.h"

namespace kiln {

Status check_node_operands(const PlanNode& node);

}  // namespace kiln
