// ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp and GlobalAveragePool/
// GlobalMaxPool.
//
// Runtime form: op Reduce<Kind> (the ONNX name), one input, attrs axes (sorted,
// unique, >= 0; empty when a reduction over nothing still maps elements) and keepdims. Every
// version's spelling (axes attribute, axes input from ReduceSum-13 and the others' 18, empty
// axes = all axes, noop_with_empty_axes) is resolved here; a reduction over nothing that leaves
// elements unchanged becomes the runtime copy op "Reshape".
#include <algorithm>

#include "compiler/ops/normalization_internal.h"

namespace kiln::norm_schema {
namespace {

Status finish_as_copy(InferContext& c) {
  c.set_output(0, c.input_dtype(0), c.input_shape(0));
  return c.lower_to_copy();
}

Status finish_reduce(InferContext& c, const std::string& runtime_op, std::vector<int64_t> axes, bool keepdims) {
  const Shape& in = c.input_shape(0);
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  Shape out;
  size_t k = 0;
  for (int64_t d = 0; d < static_cast<int64_t>(in.size()); ++d) {
    const bool reduced = k < axes.size() && axes[k] == d;
    if (reduced) ++k;
    if (!reduced) out.push_back(in[d]);
    else if (keepdims) out.push_back(1);
  }
  Attributes a;
  a.set("axes", axes);
  a.set("keepdims", int64_t{keepdims ? 1 : 0});
  c.mutable_attrs() = a;
  c.keep_inputs(1);
  c.set_runtime_op(runtime_op);
  c.set_output(0, c.input_dtype(0), out);
  return Status::ok();
}

}  // namespace

Status infer_reduce(InferContext& c) {
  const std::string& op = c.node().op_type;
  // Versions whose axes come as an optional second input.
  const bool axes_input = op == "ReduceSum" ? c.version() >= 13 : c.version() >= 18;
  KILN_TRY(c.require_inputs(1, axes_input ? 2 : 1));
  // Mean, L2 and the logs have float results; the others are defined on integers too (shape
  // arithmetic: ReduceProd of a Shape is an element count).
  // float64 runs on the CPU backend.
  if (op == "ReduceMean" || op == "ReduceL2" || op == "ReduceLogSum" || op == "ReduceLogSumExp")
    KILN_TRY(c.require_dtype(0, {DType::kFloat32, DType::kFloat64}));
  else
    KILN_TRY(c.require_dtype(0, {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64}));
  std::vector<int64_t> axes;
  if (axes_input) {
    if (c.has_input(1)) KILN_TRY(c.const_ints(1, &axes));
  } else {
    axes = c.attrs().get_ints("axes");
  }
  const bool keepdims = c.attrs().get_int("keepdims", 1) != 0;
  const bool noop_empty = axes_input && c.attrs().get_int("noop_with_empty_axes", 0) != 0;
  const int64_t rank = static_cast<int64_t>(c.input_shape(0).size());
  if (axes.empty()) {
    // A reduction over no axes maps each element alone: a copy, except for the kinds that
    // transform a lone element (|x|, x^2, log x). ONNX's reference leaves the input of every
    // noop_with_empty_axes reduction as it is but squares ReduceSumSquare's.
    const bool maps = op == "ReduceL1" || op == "ReduceL2" || op == "ReduceSumSquare" || op == "ReduceLogSum";
    if ((noop_empty && op == "ReduceSumSquare") || (rank == 0 && maps)) return finish_reduce(c, op, {}, keepdims);
    if (noop_empty || rank == 0) return finish_as_copy(c);
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  for (int64_t& a : axes) KILN_TRY_CTX(normalize_axis(a, rank, &a), c.node().describe() + ": axes");
  return finish_reduce(c, op, axes, keepdims);
}

Status infer_global_pool(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  KILN_TRY(c.require_dtype(0, {DType::kFloat32}));
  const Shape& in = c.input_shape(0);
  if (in.size() < 2) return c.fail("X must have rank >= 2 (N x C x ...), got " + shape_str(in));
  if (in.size() == 2) return finish_as_copy(c);
  std::vector<int64_t> axes;
  for (int64_t d = 2; d < static_cast<int64_t>(in.size()); ++d) axes.push_back(d);
  return finish_reduce(c, c.node().op_type == "GlobalAveragePool" ? "ReduceMean" : "ReduceMax", axes, true);
}

}  // namespace kiln::norm_schema
