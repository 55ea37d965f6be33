// Conv, ConvTranspose, Gemm, MatMul. (stub: not implemented yet)
#include "compiler/ops/op_schema.h"

namespace kiln {

void register_linear_schemas(SchemaRegistry& r) {}

}  // namespace kiln
