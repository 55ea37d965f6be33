// Which nodes may write their output over a dying input (the memory planner's in-place rule).
// Only ops whose kernels on both backends read each element of that input before writing the
// same element of the output, and nothing else of it; each such op says when with its
// registration (CpuOp::in_place):
//  - Reshape (every copy op: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout): the
//    output is the input's bytes; the kernels skip the copy when both are the same memory.
//  - Elementwise programs, for an input read at the output's own shape (not broadcast): each
//    element is loaded before the same element is stored (CPU: per block, the last instruction
//    writes out[i] from its operands' element i; OpenCL: one work item per element, built
//    without `restrict` when an input is the output buffer).
#pragma once
#include "runtime/plan/plan.h"

namespace kiln {

// Whether `node` may store its only output in the memory of its input `input`.
bool may_write_in_place(const Plan& plan, const PlanNode& node, size_t input);

// Whether tensors a and b have the same shape at every point of a dynamic plan's range: the
// same stored (max) shape and the same expression for every dim.
bool same_shape_everywhere(const Plan& plan, int32_t a, int32_t b);

}  // namespace kiln
