// Fuses bias adds and activations (Relu, Clip, HardSwish, Sigmoid, ...) into the Conv/Gemm/MatMul that feeds them. (stub: not implemented yet)
#include "compiler/passes/passes.h"

namespace kiln {

Status run_fuse_activation(ir::Graph&, const PassContext&) { return Status::ok(); }

}  // namespace kiln
