// Rules of the control_flow family (If, Loop, Scan: compiler/ops/control_flow.cpp). Their
// outputs are whatever their subgraphs make, which the plan verifier checks structurally
// (runtime/plan/plan_verify.cpp: ownership, captures) and the CPU kernels check against the
// operands at every run (runtime/backends/cpu/control_flow.cpp). The rule reads and bounds the
// attributes those kernels read and takes the plan's output shapes.
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

void planned_outputs(RuleContext& c) {
  for (size_t i = 0; i < c.num_outputs(); ++i) c.set_output(i, c.planned_output(i).dtype, c.planned_output(i).shape);
}

Status if_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, c.num_inputs()));
  KILN_TRY(c.dtype_is(0, DType::kBool));
  if (c.node().subgraphs.size() != 2) return c.fail("needs two branches");
  planned_outputs(c);
  return Status::ok();
}

Status loop_rule(RuleContext& c) {
  KILN_TRY(c.inputs(0, c.num_inputs()));
  if (c.num_inputs() < 2) return c.fail("needs its trip count and condition operands (present or not)");
  if (c.has_input(0)) KILN_TRY(c.dtype_is(0, DType::kInt64));
  if (c.has_input(1)) KILN_TRY(c.dtype_is(1, DType::kBool));
  if (c.node().subgraphs.size() != 1) return c.fail("needs one body");
  planned_outputs(c);
  return Status::ok();
}

Status scan_rule(RuleContext& c) {
  if (c.node().subgraphs.size() != 1) return c.fail("needs one body");
  int64_t m, batched;
  KILN_TRY(c.int_attr_in("batched", 0, 0, 1, &batched));
  // Scan-8's first operand, sequence_lens, may be left out; every other one is there. (Captured
  // outer values follow the explicit operands, so the scan inputs' positions are the body's
  // business: the kernel checks axes and slices against them at every run.)
  KILN_TRY(c.inputs(0, c.num_inputs()));
  for (size_t i = static_cast<size_t>(batched); i < c.num_inputs(); ++i)
    if (!c.has_input(i)) return c.fail("lacks operand " + std::to_string(i));
  KILN_TRY(c.int_attr_in("num_scan_inputs", 0, 1, static_cast<int64_t>(c.num_inputs()), &m));
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
  KILN_TRY(c.ints_attr("scan_input_axes", &in_axes));
  KILN_TRY(c.ints_attr("scan_input_directions", &in_dirs));
  KILN_TRY(c.ints_attr("scan_output_axes", &out_axes));
  KILN_TRY(c.ints_attr("scan_output_directions", &out_dirs));
  if (in_axes.size() != static_cast<size_t>(m) || in_dirs.size() != static_cast<size_t>(m) ||
      out_axes.size() != out_dirs.size())
    return c.fail("scan axes and directions do not match num_scan_inputs");
  for (const std::vector<int64_t>* v : {&in_dirs, &out_dirs})
    for (int64_t d : *v)
      if (d != 0 && d != 1) return c.fail("scan directions must be 0 or 1");
  planned_outputs(c);
  return Status::ok();
}

}  // namespace

void register_control_flow_rules(RuleRegistry& r) {
  r.add("If", if_rule);
  r.add("Loop", loop_rule);
  r.add("Scan", scan_rule);
}

}  // namespace kiln
