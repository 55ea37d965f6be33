// Folds inference BatchNormalization into the Conv/ConvTranspose/Gemm that feeds it. (stub: not implemented yet)
#include "compiler/passes/passes.h"

namespace kiln {

Status run_fold_batchnorm(ir::Graph&, const PassContext&) { return Status::ok(); }

}  // namespace kiln
