// Rule of the copy family: "Reshape" (the runtime form of Reshape, Flatten, Squeeze, Unsqueeze,
// Identity and inference-time Dropout; compiler/ops/copy.cpp) relabels the shape of a byte copy,
// so its output keeps the input's dtype and element count. No attributes.
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

Status reshape_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(1, 1));
  if (!dtype_is_storable(c.dtype(0))) return c.fail("input 0 has dtype " + dtype_name(c.dtype(0)));
  int64_t n;
  KILN_TRY(rules::numel(c, c.shape(0), "input", &n));
  c.set_output_numel(0, c.dtype(0), n);
  return Status::ok();
}

}  // namespace

void register_copy_rules(RuleRegistry& r) { r.add("Reshape", reshape_rule); }

}  // namespace kiln
