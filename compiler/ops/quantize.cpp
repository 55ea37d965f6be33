// Quantization ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear (int8/uint8/float8). (stub: not implemented yet)
#include "compiler/ops/op_schema.h"

namespace kiln {

void register_quantize_schemas(SchemaRegistry& r) {}

}  // namespace kiln
