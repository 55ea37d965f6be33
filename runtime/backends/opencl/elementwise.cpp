// Elementwise ops: arithmetic, activations, comparisons, Where, Cast, Not, Clip, Min/Max/Sum. (stub: not implemented yet)
#include "runtime/ops/kernel_api.h"

namespace kiln {

void register_elementwise_opencl(ClRegistry& r) {}

}  // namespace kiln
