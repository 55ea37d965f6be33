// FP16 nodes on the CPU: kernels registered CpuFloat16::kWidened compute in float32 on
// float32 copies of the float16 tensors (see CpuRegistry).
#pragma once
#include <vector>

#include "runtime/ops/kernel_api.h"

namespace kiln {

bool has_float16(const std::vector<TensorView>& inputs, const std::vector<TensorView>& outputs);

// Widens the float16 inputs into float32 scratch, runs `fn` with float32 views in their place
// and rounds its float32 outputs to half (nearest even). The scratch is per thread and only
// grows, so steady-state inference allocates nothing here.
Status run_widened_float16(CpuKernelFn fn, const PlanNode& node, const std::vector<TensorView>& inputs,
                           const std::vector<TensorView>& outputs);

}  // namespace kiln
