// Softmax, LogSoftmax, BatchNormalization, InstanceNormalization, LayerNormalization, reductions, pooling. (stub: not implemented yet)
#include "compiler/ops/op_schema.h"

namespace kiln {

void register_normalization_schemas(SchemaRegistry& r) {}

}  // namespace kiln
