// Elementwise ops: arithmetic, activations, comparisons, Where, Cast, Not, Clip, Min/Max/Sum. (stub: not implemented yet)
#include "compiler/ops/op_schema.h"

namespace kiln {

void register_elementwise_schemas(SchemaRegistry& r) {}

}  // namespace kiln
