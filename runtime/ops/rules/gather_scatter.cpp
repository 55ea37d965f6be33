// Rules of the gather_scatter family (runtime forms written by compiler/ops/gather_scatter.cpp):
//   GatherElements (data, indices) {axis}   GatherND (data, indices) {batch_dims}
//   ScatterElements (data, indices, updates) {axis, reduction}   ScatterND (...) {reduction}
// Indices are int32/int64; constant ones are range-checked here, run-time ones by the kernels.
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

// The "reduction" codes (runtime/backends/gather_scatter_attrs.h): none, add, mul, max, min.
constexpr int64_t kMaxReduction = 4;

// Every constant index j within [-n(j), n(j)).
template <typename AxisSize>
Status const_indices_in_range(const RuleContext& c, AxisSize size_of) {
  if (!c.input(1).data) return Status::ok();
  const TensorView v = c.input(1).view();
  for (int64_t j = 0, k = v.numel(); j < k; ++j) {
    const int64_t i = v.dtype == DType::kInt64 ? v.as<int64_t>()[j] : v.as<int32_t>()[j];
    const int64_t n = size_of(j);
    if (i < -n || i >= n)
      return c.fail("index " + std::to_string(i) + " (at position " + std::to_string(j) +
                    ") is out of range for a dim of size " + std::to_string(n));
  }
  return Status::ok();
}

Status elements_rule(RuleContext& c) {
  const bool scatter = c.node().op == "ScatterElements";
  KILN_TRY(c.inputs(scatter ? 3 : 2, scatter ? 3 : 2));
  KILN_TRY(c.outputs(1, 1));
  KILN_TRY(c.dtype_in(1, {DType::kInt32, DType::kInt64}));
  int64_t axis, reduction = 0;
  KILN_TRY(c.int_attr("axis", 0, &axis));
  if (scatter) KILN_TRY(c.int_attr_in("reduction", 0, 0, kMaxReduction, &reduction));
  const Shape& d = c.shape(0);
  const Shape& ind = c.shape(1);
  if (d.empty() || axis < 0 || axis >= c.rank(0)) return c.fail("axis " + std::to_string(axis) + " is out of range for " + shape_str(d));
  if (ind.size() != d.size()) return c.fail("indices " + shape_str(ind) + " and data " + shape_str(d) + " differ in rank");
  for (size_t k = 0; k < d.size(); ++k)
    if (static_cast<int64_t>(k) != axis && ind[k] > d[k])
      return c.fail("indices " + shape_str(ind) + " exceed data " + shape_str(d) + " along dim " + std::to_string(k));
  KILN_TRY(const_indices_in_range(c, [&](int64_t) { return d[axis]; }));
  if (!scatter) {
    c.set_output(0, c.dtype(0), ind);
    return Status::ok();
  }
  if (c.dtype(2) != c.dtype(0) || c.shape(2) != ind) return c.fail("updates must have the data's dtype and the indices' shape");
  if (reduction && c.dtype(0) != DType::kFloat32 && c.dtype(0) != DType::kFloat16 && c.dtype(0) != DType::kFloat64 &&
      c.dtype(0) != DType::kInt32 && c.dtype(0) != DType::kInt64)
    return c.fail("a scatter reduction needs float or int32/int64 data, got " + dtype_name(c.dtype(0)));
  c.set_output(0, c.dtype(0), d);
  return Status::ok();
}

Status nd_rule(RuleContext& c) {
  const bool scatter = c.node().op == "ScatterND";
  KILN_TRY(c.inputs(scatter ? 3 : 2, scatter ? 3 : 2));
  KILN_TRY(c.outputs(1, 1));
  KILN_TRY(c.dtype_in(1, {DType::kInt32, DType::kInt64}));
  int64_t b = 0, reduction = 0;
  if (scatter) KILN_TRY(c.int_attr_in("reduction", 0, 0, kMaxReduction, &reduction));
  else KILN_TRY(c.int_attr("batch_dims", 0, &b));
  const Shape& d = c.shape(0);
  const Shape& ind = c.shape(1);
  const int64_t r = c.rank(0), q = c.rank(1);
  if (r < 1 || q < 1 || b < 0 || b >= std::min(r, q))
    return c.fail("batch_dims " + std::to_string(b) + " does not fit data " + shape_str(d) + " and indices " + shape_str(ind));
  for (int64_t i = 0; i < b; ++i)
    if (d[i] != ind[i]) return c.fail("batch dim " + std::to_string(i) + " differs between data and indices");
  const int64_t k = ind.back();
  if (k < 1 || k > r - b) return c.fail("the last dim of indices (" + std::to_string(k) + ") must be in [1, " + std::to_string(r - b) + "]");
  KILN_TRY(const_indices_in_range(c, [&](int64_t j) { return d[b + j % k]; }));
  Shape slices(ind.begin(), ind.end() - 1);
  slices.insert(slices.end(), d.begin() + b + k, d.end());
  if (!scatter) {
    c.set_output(0, c.dtype(0), slices);
    return Status::ok();
  }
  if (c.dtype(2) != c.dtype(0) || c.shape(2) != slices)
    return c.fail("updates must be " + dtype_name(c.dtype(0)) + " " + shape_str(slices));
  c.set_output(0, c.dtype(0), d);
  return Status::ok();
}

}  // namespace

void register_gather_scatter_rules(RuleRegistry& r) {
  r.add("GatherElements", elements_rule);
  r.add("ScatterElements", elements_rule);
  r.add("GatherND", nd_rule);
  r.add("ScatterND", nd_rule);
}

}  // namespace kiln
