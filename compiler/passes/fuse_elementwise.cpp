// Fuses chains of elementwise ops into one Elementwise kernel. (stub: not implemented yet)
#include "compiler/passes/passes.h"

namespace kiln {

Status run_fuse_elementwise(ir::Graph&, const PassContext&) { return Status::ok(); }

}  // namespace kiln
