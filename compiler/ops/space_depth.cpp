// The space_depth family: DepthToSpace and SpaceToDepth, which move blocks of blocksize x
// blocksize pixels between the channel dim and the spatial dims of an NCHW tensor.
//
// Runtime forms (runtime/backends/*/space_depth.cpp): one input; attrs blocksize and, for
// DepthToSpace, crd (1: mode CRD, channels then the block; 0: DCR, the block then channels).
#include <string>

#include "compiler/ops/op_schema.h"

namespace kiln {
namespace {

Status read_blocksize(InferContext& c, int64_t* b) {
  if (!c.attrs().has("blocksize")) return c.fail("attribute blocksize is required");
  *b = c.attrs().get_int("blocksize", 0);
  if (*b < 1) return c.fail("blocksize must be positive, got " + std::to_string(*b));
  const Shape& x = c.input_shape(0);
  if (x.size() != 4) return c.fail("input must be 4-D (N x C x H x W), got " + shape_str(x));
  return Status::ok();
}

Status infer_depth_to_space(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  int64_t b;
  KILN_TRY(read_blocksize(c, &b));
  const Shape& x = c.input_shape(0);
  if (x[1] % (b * b) != 0)
    return c.fail("channels (" + std::to_string(x[1]) + ") must be a multiple of blocksize^2 (" + std::to_string(b * b) + ")");
  const std::string mode = c.version() >= 11 ? c.attrs().get_string("mode", "DCR") : "DCR";
  if (mode != "DCR" && mode != "CRD") return c.fail("mode must be DCR or CRD, got '" + mode + "'");
  Attributes a;
  a.set("blocksize", b);
  a.set("crd", int64_t{mode == "CRD" ? 1 : 0});
  c.mutable_attrs() = a;
  c.set_output(0, c.input_dtype(0), {x[0], x[1] / (b * b), x[2] * b, x[3] * b});
  return Status::ok();
}

Status infer_space_to_depth(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  int64_t b;
  KILN_TRY(read_blocksize(c, &b));
  const Shape& x = c.input_shape(0);
  if (x[2] % b != 0 || x[3] % b != 0)
    return c.fail("height and width (" + std::to_string(x[2]) + ", " + std::to_string(x[3]) +
                  ") must be multiples of blocksize " + std::to_string(b));
  Attributes a;
  a.set("blocksize", b);
  c.mutable_attrs() = a;
  c.set_output(0, c.input_dtype(0), {x[0], x[1] * b * b, x[2] / b, x[3] / b});
  return Status::ok();
}

}  // namespace

void register_space_depth_schemas(SchemaRegistry& r) {
  r.add({"DepthToSpace", {1, 11, 13}, infer_depth_to_space}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"SpaceToDepth", {1, 13}, infer_space_to_depth}).fp16(Fp16::kMove).commutes_with_quantize();
}

}  // namespace kiln
