// The ranking family: ArgMax, ArgMin, TopK.
//
// Runtime forms (runtime/backends/*/ranking.cpp):
//   ArgMax / ArgMin  one input; attrs axis (>= 0), keepdims, select_last_index; int64 output
//   TopK             one input (K read into attrs); attrs axis (>= 0), k, largest; outputs
//                    Values and Indices (int64), always sorted (best first, ties by lower index)
// As in numpy, a NaN wins ArgMax and ArgMin alike and ranks above every number in TopK.
#include <string>

#include "compiler/ops/op_schema.h"

namespace kiln {
namespace {

const std::initializer_list<DType> kRankable = {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt8,
                                                DType::kUInt8,   DType::kInt16,   DType::kInt32,   DType::kInt64};

Status infer_arg(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  KILN_TRY(c.require_dtype(0, kRankable));
  const Shape& x = c.input_shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  if (r == 0) return c.fail("input must have rank >= 1");
  int64_t axis;
  KILN_TRY(c.normalize_axis("axis", c.attrs().get_int("axis", 0), r, &axis));
  if (x[axis] == 0) return c.fail("cannot take " + c.node().op_type + " over an empty axis (dim " + std::to_string(axis) + ")");
  const bool keepdims = c.attrs().get_int("keepdims", 1) != 0;
  const bool last = c.version() >= 12 && c.attrs().get_int("select_last_index", 0) != 0;
  Shape out;
  for (int64_t d = 0; d < r; ++d)
    if (d != axis) out.push_back(x[d]);
    else if (keepdims) out.push_back(1);
  Attributes a;
  a.set("axis", axis);
  a.set("keepdims", int64_t{keepdims ? 1 : 0});
  a.set("select_last_index", int64_t{last ? 1 : 0});
  c.mutable_attrs() = a;
  c.set_output(0, DType::kInt64, out);
  return Status::ok();
}

Status infer_topk(InferContext& c) {
  const bool k_input = c.version() >= 10;
  KILN_TRY(c.require_inputs(k_input ? 2 : 1, k_input ? 2 : 1));
  KILN_TRY(c.require_dtype(0, kRankable));
  const Shape& x = c.input_shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  if (r == 0) return c.fail("input must have rank >= 1");
  int64_t axis;
  KILN_TRY(c.normalize_axis("axis", c.attrs().get_int("axis", -1), r, &axis));
  int64_t k;
  if (k_input) {
    std::vector<int64_t> kv;
    KILN_TRY(c.const_ints(1, &kv));
    if (kv.size() != 1) return c.fail("K must hold one value, got " + std::to_string(kv.size()));
    k = kv[0];
  } else {
    if (!c.attrs().has("k")) return c.fail("attribute k is required");
    k = c.attrs().get_int("k", 0);
  }
  if (k < 0 || k > x[axis])
    return c.fail("K = " + std::to_string(k) + " is out of range for axis " + std::to_string(axis) + " of size " +
                  std::to_string(x[axis]));
  const bool largest = c.version() < 11 || c.attrs().get_int("largest", 1) != 0;
  // sorted=0 allows any order; kiln's order (sorted) is one of them.
  Shape out = x;
  out[axis] = k;
  Attributes a;
  a.set("axis", axis);
  a.set("k", k);
  a.set("largest", int64_t{largest ? 1 : 0});
  c.mutable_attrs() = a;
  c.keep_inputs(1);
  c.set_output(0, c.input_dtype(0), out);
  c.set_output(1, DType::kInt64, out);
  return Status::ok();
}

}  // namespace

void register_ranking_schemas(SchemaRegistry& r) {
  r.add({"ArgMax", {1, 11, 12, 13}, infer_arg}).fp16(Fp16::kCompute);
  r.add({"ArgMin", {1, 11, 12, 13}, infer_arg}).fp16(Fp16::kCompute);
  r.add({"TopK", {1, 10, 11, 24}, infer_topk}).fp16(Fp16::kCompute);
}

}  // namespace kiln
