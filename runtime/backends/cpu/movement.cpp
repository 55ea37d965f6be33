// Data movement and shape ops: Transpose, Concat, Split, Slice, Gather, Expand, Tile, Pad, Resize, Constant, ConstantOfShape, Shape, Range. (stub: not implemented yet)
#include "runtime/ops/kernel_api.h"

namespace kiln {

void register_movement_cpu(CpuRegistry& r) {}

}  // namespace kiln
