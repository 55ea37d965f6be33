// What a node computes in, as `kiln inspect` prints it: the --precision names fp32/fp16 for
// float32/float16, else the dtype name; conversions read "fp32->fp16". Ops say how with their
// registration (CpuOp::precision); the default is the dtype of output 0.
#pragma once
#include <string>

#include "runtime/plan/plan.h"

namespace kiln {

std::string node_precision(const Plan& plan, const PlanNode& node);

// Building blocks for ops' precision functions.
std::string precision_name(DType t);
// The dtype of input i ("?" when absent): integer kernels compute in their input type.
std::string input_precision(const Plan& plan, const PlanNode& node, size_t i);
// "<input 0>-><output 0>": quantize/dequantize and casts.
std::string conversion_precision(const Plan& plan, const PlanNode& node);

}  // namespace kiln
