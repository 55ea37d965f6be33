// FP8 linear ops Fp8Conv and Fp8MatMul: kiln-internal (OpSchema::internal), made by the
// post-training quantization pass (compiler/passes/quantize_ptq.cpp) and by Q/DQ folding
// (compiler/passes/fold_qdq.cpp), never read from a model. Operands and arithmetic:
// runtime/backends/quantize_fp8_geometry.h. Attributes: output_dtype (the output's DType code:
// float8e4m3fn, float8e5m2 or float32), saturate (the output cast's, as QuantizeLinear-19), and
// for Fp8Conv the canonical Conv attributes (kernel_shape, strides, dilations, pads, group).
#include "compiler/ops/op_schema.h"
#include "runtime/core/float8.h"
#include "runtime/ops/quantized_linear.h"

namespace kiln {
namespace {

bool fp8_or_float(DType t) { return t == DType::kFloat32 || float8_is_supported(t); }

Status check_scalar(InferContext& c, size_t i, const char* name) {
  if (shape_numel(c.input_shape(i)) != 1) return c.fail(std::string(name) + " must be a scalar, got " + shape_str(c.input_shape(i)));
  return Status::ok();
}

// Common operand checks; `channels` is the weight's output channel count (per-channel scale and
// bias length).
Status check_operands(InferContext& c, int64_t channels, const char* w_scale) {
  if (!fp8_or_float(c.input_dtype(0)))
    return c.fail("input has dtype " + dtype_name(c.input_dtype(0)) + "; expected float8e4m3fn, float8e5m2 or float32");
  KILN_TRY(c.require_dtype(2, {DType::kFloat8E4M3FN, DType::kFloat8E5M2}));
  for (size_t i : {1, 3, 4}) KILN_TRY(c.require_dtype(i, {DType::kFloat32}));
  KILN_TRY(check_scalar(c, 1, "the input scale"));
  KILN_TRY(check_scalar(c, 4, "y_scale"));
  const int64_t ns = shape_numel(c.input_shape(3));
  if (ns != 1 && !(c.input_shape(3).size() == 1 && ns == channels))
    return c.fail(std::string(w_scale) + " shape " + shape_str(c.input_shape(3)) + " is neither a scalar nor [" +
                  std::to_string(channels) + "]");
  if (c.has_input(5)) {
    KILN_TRY(c.require_dtype(5, {DType::kFloat32}));
    if (c.input_shape(5) != Shape{channels})
      return c.fail("bias shape " + shape_str(c.input_shape(5)) + " must be [" + std::to_string(channels) + "]");
  }
  return Status::ok();
}

Status output_dtype(InferContext& c, DType* out) {
  *out = static_cast<DType>(c.attrs().get_int("output_dtype", static_cast<int64_t>(DType::kFloat32)));
  if (!fp8_or_float(*out)) return c.fail("output_dtype must be float8e4m3fn, float8e5m2 or float32");
  return Status::ok();
}

Status infer_fp8_conv(InferContext& c) {
  KILN_TRY(c.require_inputs(5, 6));
  const Shape& x = c.input_shape(0);
  const Shape& w = c.input_shape(2);
  if (x.size() < 3 || w.size() != x.size()) return c.fail("x " + shape_str(x) + " and w " + shape_str(w) + " do not fit a convolution");
  KILN_TRY(check_operands(c, w[0], "w_scale"));
  const size_t nd = x.size() - 2;
  const int64_t group = c.attrs().get_int("group", 1);
  const std::vector<int64_t> ks = c.attrs().get_ints("kernel_shape"), st = c.attrs().get_ints("strides"),
                             dil = c.attrs().get_ints("dilations"), pads = c.attrs().get_ints("pads");
  if (group < 1 || w[0] % group || w[1] * group != x[1])
    return c.fail("w " + shape_str(w) + " with group " + std::to_string(group) + " does not fit x " + shape_str(x));
  if (ks.size() != nd || st.size() != nd || dil.size() != nd || pads.size() != 2 * nd)
    return c.fail("kernel_shape/strides/dilations/pads must be explicit for " + std::to_string(nd) + " spatial dims");
  Shape out = {x[0], w[0]};
  for (size_t d = 0; d < nd; ++d) {
    for (int64_t v : {ks[d], st[d], dil[d], pads[d], pads[nd + d], x[2 + d]})
      if (v < 0 || v > kMaxGeometry) return c.fail("convolution attributes do not fit x " + shape_str(x) + " and w " + shape_str(w));
    const int64_t span = x[2 + d] + pads[d] + pads[nd + d] - ((ks[d] - 1) * dil[d] + 1);
    if (ks[d] != w[2 + d] || st[d] < 1 || dil[d] < 1 || pads[d] < 0 || pads[nd + d] < 0 || span < 0)
      return c.fail("convolution attributes do not fit x " + shape_str(x) + " and w " + shape_str(w));
    out.push_back(span / st[d] + 1);
  }
  DType t;
  KILN_TRY(output_dtype(c, &t));
  c.set_output(0, t, out);
  return Status::ok();
}

Status infer_fp8_matmul(InferContext& c) {
  KILN_TRY(c.require_inputs(5, 6));
  const Shape& a = c.input_shape(0);
  const Shape& b = c.input_shape(2);
  if (a.empty() || b.size() != 2 || a.back() != b[0])
    return c.fail("a " + shape_str(a) + " and b " + shape_str(b) + " do not fit [.., M, K] x [K, N]");
  KILN_TRY(check_operands(c, b[1], "b_scale"));
  Shape out = a;
  out.back() = b[1];
  DType t;
  KILN_TRY(output_dtype(c, &t));
  c.set_output(0, t, out);
  return Status::ok();
}

}  // namespace

void register_quantize_fp8_schemas(SchemaRegistry& r) {
  for (OpSchema s : {OpSchema{"Fp8Conv", {1}, infer_fp8_conv}, OpSchema{"Fp8MatMul", {1}, infer_fp8_matmul}}) {
    s.internal = true;
    // The fused epilogue's float output and float residual (input 6) may be float16.
    r.add(s).fp16(Fp16::kFloatIo).fp16_reads(kFp8ResidualInput);
  }
}

}  // namespace kiln
