// A deep copy of an IR graph (values, nodes, inputs, outputs, opsets), for passes that try a
// rewrite on a copy and measure it before deciding what to do to the real graph (the layer
// check of post-training quantization). Constant tensors are shared: they are immutable.
#pragma once
#include "compiler/ir/graph.h"

namespace kiln {

// `dst` must be empty. Nodes keep their order, so the i-th node of the copy is the copy of
// the i-th node of `src`.
void copy_graph(const ir::Graph& src, ir::Graph* dst);

}  // namespace kiln
