// Data movement and shape ops: Transpose, Concat, Split, Slice, Gather, Expand, Tile, Pad, Resize, Constant, ConstantOfShape, Shape, Range. (stub: not implemented yet)
#include "compiler/ops/op_schema.h"

namespace kiln {

void register_movement_schemas(SchemaRegistry& r) {}

}  // namespace kiln
