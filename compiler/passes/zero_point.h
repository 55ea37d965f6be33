// The explicit zero points the quantization passes add (quantize_ptq, fuse_quantized,
// fuse_quantize_output): a scalar 0 of the quantized type (for FP8 it only carries the dtype;
// the spec requires 0).
#pragma once
#include <memory>
#include <string>

#include "compiler/ir/graph.h"

namespace kiln {

inline ir::Value* add_zero_point(ir::Graph& g, const std::string& name, DType t) {
  return g.add_constant(name, std::make_shared<HostTensor>(t, Shape{}));  // HostTensor starts zeroed
}

}  // namespace kiln
