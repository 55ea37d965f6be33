// Rule of the einsum family (runtime form written by compiler/ops/einsum.cpp): Einsum's numbered
// labels {labels, out_labels, in_ranks, in_labels}, checked by the geometry both backends build
// from them (runtime/backends/einsum_geometry.h), which this rule uses as is. Every operand has
// the output's dtype.
#include "runtime/backends/einsum_geometry.h"
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

Status einsum_rule(RuleContext& c) {
  if (c.num_inputs() < 1) return c.fail("has no inputs");
  KILN_TRY(c.inputs(c.num_inputs(), c.num_inputs()));
  KILN_TRY(c.outputs(1, 1));
  int64_t labels, out_labels;
  std::vector<int64_t> v;
  KILN_TRY(c.int_attr_in("labels", 0, 0, 64, &labels));
  KILN_TRY(c.int_attr_in("out_labels", 0, 0, labels, &out_labels));
  KILN_TRY(c.ints_attr("in_ranks", &v));
  KILN_TRY(c.ints_attr("in_labels", &v));
  KILN_TRY(c.dtype_in(0, {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt32, DType::kInt64}));
  std::vector<Shape> shapes;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    if (c.dtype(i) != c.dtype(0)) return c.fail("operand " + std::to_string(i) + " differs in dtype from operand 0");
    shapes.push_back(c.shape(i));
  }
  // The geometry multiplies label sizes unchecked; every summed label is some operand's dim, so
  // bounding the product of all operand dims bounds the terms each output element sums.
  int64_t terms = 1;
  for (const Shape& s : shapes)
    for (int64_t d : s)
      if (d > 1 && !mul_ok(terms, d, &terms)) return c.fail("the operands' dims multiply past int64");
  einsum::Geom g;
  Status st = einsum::make_geom(c.node().attrs, shapes, c.planned_output(0).shape, &g);
  if (!st) return c.fail(st.message());
  c.set_output(0, c.dtype(0), c.planned_output(0).shape);
  return Status::ok();
}

}  // namespace

void register_einsum_rules(RuleRegistry& r) { r.add("Einsum", einsum_rule); }

}  // namespace kiln
