// Softmax, LogSoftmax, BatchNormalization, InstanceNormalization, LayerNormalization, reductions, pooling. (stub: not implemented yet)
#include "runtime/ops/kernel_api.h"

namespace kiln {

void register_normalization_opencl(ClRegistry& r) {}

}  // namespace kiln
