// Rule of the elementwise family: "Elementwise" runs a straight-line program (ew_code,
// ew_params; runtime/ops/elementwise_program.h) over inputs broadcast to one output shape. The
// program's own validation (registers, operand dtypes) is the attribute rule; the output takes
// the program's result dtype and the inputs' broadcast shape.
#include "runtime/ops/elementwise_program.h"
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

Status elementwise_rule(RuleContext& c) {
  if (c.num_inputs() < 1) return c.fail("has no inputs");
  KILN_TRY(c.inputs(c.num_inputs(), c.num_inputs()));
  KILN_TRY(c.outputs(1, 1));
  std::vector<int64_t> code;
  std::vector<float> params;
  KILN_TRY(c.ints_attr(ew::kCodeAttr, &code));
  KILN_TRY(c.floats_attr(ew::kParamsAttr, &params));
  std::vector<DType> dtypes;
  Shape out;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    dtypes.push_back(c.dtype(i));
    KILN_TRY(rules::broadcast(c, out, c.shape(i), &out));
  }
  ew::Program prog;
  Status st = ew::Program::from_attrs(c.node().attrs, dtypes, &prog);
  if (!st) return c.fail(st.message());
  c.set_output(0, prog.out_dtype(), out);
  return Status::ok();
}

}  // namespace

void register_elementwise_rules(RuleRegistry& r) { r.add(ew::kRuntimeOp, elementwise_rule); }

}  // namespace kiln
