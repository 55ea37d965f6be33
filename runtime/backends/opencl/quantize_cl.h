// Per-tensor quantization on OpenCL, shared by QuantizeLinear (quantize.cpp) and the kernels
// that write a quantized copy of their output (runtime/ops/quantized_output.h).
#pragma once
#include <string>

#include "runtime/device/cl_runtime.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/ops/quantized_output.h"

namespace kiln::quantcl {

// Build options of kernels/quantize_value.cl for quantized dtype `qt`; false when no OpenCL
// kernel writes that dtype.
bool options(const ClRuntime& cl, DType qt, std::string* out);

// QuantizeLinear of the n floats in x (float16 where `half_x`) into y of 8-bit dtype `qt`, with
// one scale and zero point (zp may be null).
Status per_tensor(ClKernelArgs& a, cl_mem x, bool half_x, int64_t n, cl_mem scale, cl_mem zp, cl_mem y, DType qt,
                  bool saturate);

// The node's quantized copy `q` of its output 0 by QuantizeLinear's own kernel: for the shapes a
// node's fused output stage does not take (runtime/ops/quantized_output.h).
Status quantized_copy(ClKernelArgs& a, const QuantizedOutput& q);

// Whether the node's OpenCL kernels can write its quantized copy, if it has one.
bool copy_supported(const PlanNode& n, const Plan& p);

}  // namespace kiln::quantcl
