// Conv, ConvTranspose, Gemm, MatMul. (stub: not implemented yet)
#include "runtime/ops/kernel_api.h"

namespace kiln {

void register_linear_cpu(CpuRegistry& r) {}

}  // namespace kiln
