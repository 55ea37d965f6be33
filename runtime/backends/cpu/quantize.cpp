// Quantization ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear (int8/uint8/float8). (stub: not implemented yet)
#include "runtime/ops/kernel_api.h"

namespace kiln {

void register_quantize_cpu(CpuRegistry& r) {}

}  // namespace kiln
