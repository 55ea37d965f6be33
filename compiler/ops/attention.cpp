// The attention family has no ONNX schema: its one runtime op, Attention
// (runtime/backends/attention_geometry.h), is made by compiler/passes/fuse_attention.cpp from
// the MatMul/Softmax patterns that exporters write, after every node has been inferred and
// converted to its precision, so nothing in the compiler needs a shape rule or fp16 form for
// it. A model's own Attention node (ONNX opset 23, com.microsoft) is refused at import like any
// op kiln has no schema for.
#include "compiler/ops/op_schema.h"

namespace kiln {

void register_attention_schemas(SchemaRegistry&) {}

}  // namespace kiln
