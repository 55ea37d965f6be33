// Rules of the recurrent family (the canonical RNN/GRU/LSTM node of
// runtime/backends/recurrent_geometry.h, made by compiler/ops/recurrent.cpp): the attributes
// read through the rule context, then the geometry check both backends run, which derives the
// outputs (Y [seq, dirs, batch, hidden] or its layout-1 form, Y_h and Y_c as the state).
#include "runtime/backends/recurrent_geometry.h"
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

Status recurrent_rule(RuleContext& c) {
  const rnngeo::Cell cell = rnngeo::cell_of(c.node().op);
  const size_t max_inputs = cell == rnngeo::Cell::kLstm ? 8 : 6;
  KILN_TRY(c.inputs(3, max_inputs));
  KILN_TRY(c.outputs(1, static_cast<size_t>(rnngeo::num_outputs(cell))));
  // Every attribute the kernels read, of the right kind (the geometry check below bounds them).
  int64_t i64;
  float f32;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  KILN_TRY(c.int_attr("direction_mode", -1, &i64));
  KILN_TRY(c.int_attr("layout", 0, &i64));
  KILN_TRY(c.int_attr("hidden_size", -1, &i64));
  KILN_TRY(c.int_attr("output_mask", 0, &i64));
  KILN_TRY(c.float_attr("clip", 0, &f32));
  KILN_TRY(c.ints_attr("activation_codes", &ints));
  KILN_TRY(c.floats_attr("activation_alpha", &floats));
  KILN_TRY(c.floats_attr("activation_beta", &floats));
  if (cell == rnngeo::Cell::kGru) KILN_TRY(c.int_attr_in("linear_before_reset", 0, 0, 1, &i64));
  if (cell == rnngeo::Cell::kLstm) KILN_TRY(c.int_attr_in("input_forget", 0, 0, 1, &i64));
  for (size_t i = 0; i < c.num_inputs(); ++i)
    if (c.has_input(i)) KILN_TRY(c.dtype_is(i, i == 4 ? DType::kInt32 : DType::kFloat32));

  std::vector<Shape> in, out;
  std::vector<bool> present;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    in.push_back(c.has_input(i) ? c.shape(i) : Shape{});
    present.push_back(c.has_input(i));
  }
  for (size_t i = 0; i < c.num_outputs(); ++i) out.push_back(c.planned_output(i).shape);
  rnngeo::Geometry g;
  Status st = rnngeo::check(cell, c.node().attrs, in, present, out, &g);
  if (!st) return c.fail(st.message());
  const int64_t mask = c.node().attrs.get_int("output_mask", 0);
  int64_t present_outputs = 0;
  for (int i = 0; i < rnngeo::num_outputs(cell); ++i) {
    const int slot = rnngeo::output_slot(mask, i);
    if (slot < 0) continue;
    ++present_outputs;
    c.set_output(static_cast<size_t>(slot), DType::kFloat32, i == 0 ? g.y_shape() : g.state_shape());
  }
  if (present_outputs != static_cast<int64_t>(c.num_outputs()))
    return c.fail("output_mask names " + std::to_string(present_outputs) + " outputs, the node has " +
                  std::to_string(c.num_outputs()));
  return Status::ok();
}

}  // namespace

void register_recurrent_rules(RuleRegistry& r) {
  r.add("RNN", recurrent_rule);
  r.add("GRU", recurrent_rule);
  r.add("LSTM", recurrent_rule);
}

}  // namespace kiln
