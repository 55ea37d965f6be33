// Shape-relabelling ops: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout (inference).
// All lower to the runtime op "Reshape" (a byte copy into the inferred shape).
#include <algorithm>

#include "compiler/ops/op_schema.h"

namespace kiln {
namespace {

Status finish_as_copy(InferContext& c, Shape out) {
  c.set_output(0, c.input_dtype(0), std::move(out));
  return c.lower_to_copy();
}

Status infer_reshape(InferContext& c) {
  KILN_TRY(c.require_inputs(c.version() < 5 ? 1 : 2, c.version() < 5 ? 1 : 2));
  std::vector<int64_t> target;
  if (c.version() < 5) {
    target = c.attrs().get_ints("shape");
  } else {
    KILN_TRY(c.const_ints(1, &target));
  }
  const Shape& in = c.input_shape(0);
  const bool allowzero = c.attrs().get_int("allowzero", 0) != 0;
  Shape out(target.size());
  int infer_at = -1;
  int64_t known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t d = target[i];
    if (d == -1) {
      if (infer_at >= 0) return c.fail("shape has more than one -1");
      infer_at = static_cast<int>(i);
      continue;
    }
    if (d == 0 && !allowzero) {
      if (i >= in.size()) return c.fail("shape copies dim " + std::to_string(i) + " (0) beyond the input's rank");
      d = in[i];
    }
    if (d < 0) return c.fail("invalid dim " + std::to_string(d) + " in shape");
    out[i] = d;
    if (__builtin_mul_overflow(known, d, &known)) return c.fail("shape " + shape_str(target) + " has too many elements");
  }
  const int64_t n = shape_numel(in);
  if (infer_at >= 0) {
    if (known == 0 || n % known) return c.fail("cannot reshape " + shape_str(in) + " with a -1 dim");
    out[infer_at] = n / known;
  } else if (known != n) {
    return c.fail("cannot reshape " + shape_str(in) + " (" + std::to_string(n) + " elements) to " +
                  shape_str(out));
  }
  return finish_as_copy(c, out);
}

Status infer_flatten(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  const Shape& in = c.input_shape(0);
  const int64_t rank = static_cast<int64_t>(in.size());
  int64_t axis = c.attrs().get_int("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) return c.fail("axis out of range for rank " + std::to_string(rank));
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? outer : inner) *= in[i];
  return finish_as_copy(c, {outer, inner});
}

Status read_axes(InferContext& c, std::vector<int64_t>* axes, bool* given) {
  *given = false;
  if (c.version() < 13) {
    *given = c.attrs().has("axes");
    *axes = c.attrs().get_ints("axes");
  } else if (c.has_input(1)) {
    *given = true;
    KILN_TRY(c.const_ints(1, axes));
  }
  return Status::ok();
}

Status infer_squeeze(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 2));
  const Shape& in = c.input_shape(0);
  std::vector<int64_t> axes;
  bool given;
  KILN_TRY(read_axes(c, &axes, &given));
  std::vector<bool> drop(in.size(), false);
  if (!given) {
    for (size_t i = 0; i < in.size(); ++i) drop[i] = in[i] == 1;
  }
  for (int64_t a : axes) {
    int64_t ax;
    KILN_TRY_CTX(normalize_axis(a, static_cast<int64_t>(in.size()), &ax), c.node().describe());
    if (in[ax] != 1) return c.fail("cannot squeeze axis " + std::to_string(a) + " of size " + std::to_string(in[ax]));
    drop[ax] = true;
  }
  Shape out;
  for (size_t i = 0; i < in.size(); ++i)
    if (!drop[i]) out.push_back(in[i]);
  return finish_as_copy(c, out);
}

Status infer_unsqueeze(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 2));
  const Shape& in = c.input_shape(0);
  std::vector<int64_t> axes;
  bool given;
  KILN_TRY(read_axes(c, &axes, &given));
  if (!given) return c.fail("axes are required");
  const int64_t rank = static_cast<int64_t>(in.size() + axes.size());
  std::vector<bool> inserted(rank, false);
  for (int64_t a : axes) {
    int64_t ax;
    KILN_TRY_CTX(normalize_axis(a, rank, &ax), c.node().describe());
    if (inserted[ax]) return c.fail("axis " + std::to_string(a) + " is repeated");
    inserted[ax] = true;
  }
  Shape out;
  size_t j = 0;
  for (int64_t i = 0; i < rank; ++i) out.push_back(inserted[i] ? 1 : in[j++]);
  return finish_as_copy(c, out);
}

Status infer_identity(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  return finish_as_copy(c, c.input_shape(0));
}

Status infer_dropout(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 3));
  if (c.version() < 7 && c.attrs().get_int("is_test", 0) == 0 && c.version() >= 6)
    return c.fail_unsupported("training-mode Dropout (is_test=0) is not supported");
  if (c.has_input(2)) {
    std::vector<int64_t> mode;
    KILN_TRY(c.const_ints(2, &mode));
    if (!mode.empty() && mode[0] != 0)
      return c.fail_unsupported("training_mode=true is not supported (kiln runs inference only)");
  }
  if (c.num_outputs() > 1 && c.node().outputs[1]) {
    // The mask at inference is all true: a build-time constant.
    auto mask = std::make_shared<HostTensor>(DType::kBool, c.input_shape(0));
    std::fill(mask->bytes().begin(), mask->bytes().end(), 1);
    c.set_output(1, DType::kBool, c.input_shape(0));
    c.node().outputs[1]->constant = mask;
  }
  return finish_as_copy(c, c.input_shape(0));
}

}  // namespace

void register_copy_schemas(SchemaRegistry& r) {
  r.add({"Reshape", {1, 5, 13, 14, 19, 21, 23, 24}, infer_reshape}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"Flatten", {1, 9, 11, 13, 21, 23, 24}, infer_flatten}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"Squeeze", {1, 11, 13, 21, 23, 24}, infer_squeeze}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"Unsqueeze", {1, 11, 13, 21, 23, 24}, infer_unsqueeze}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"Identity", {1, 13, 14, 16, 19, 21, 23, 24}, infer_identity}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"Dropout", {1, 6, 7, 10, 12, 13, 22}, infer_dropout}).fp16(Fp16::kMove);
}

}  // namespace kiln
