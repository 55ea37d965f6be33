// QuantizeLinear with one scale and zero point, as the CPU reference kernel computes it: for the
// kernels that write a quantized copy of their output (runtime/ops/quantized_output.h), run by
// run_cpu_kernel; implemented with the CPU reference QuantizeLinear (backends/cpu/quantize.cpp).
#pragma once
#include <string>

#include "runtime/ops/kernel_api.h"

namespace kiln {

// x (float32 or float16) into y (8- or 16-bit integer, float8); `where` names the node in errors.
Status quantize_per_tensor_cpu(const std::string& where, const TensorView& x, const TensorView& scale,
                               const TensorView& zp, bool saturate, const TensorView& y);

}  // namespace kiln
