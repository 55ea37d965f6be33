// Rules of the FP8 linear ops (canonical form in runtime/backends/quantize_fp8_geometry.h):
//   Fp8Conv (x, x_scale, w, w_scale, y_scale[, B, R, R_scale]) {conv attributes, saturate,
//     output_dtype, fused epilogue}
//   Fp8MatMul (a, a_scale, b, b_scale, y_scale[, bias, R, R_scale]) {saturate, output_dtype,
//     fused epilogue}
// The geometry is checked with overflow-checked arithmetic (rules::conv_geometry for Fp8Conv);
// the scale, bias and residual checks are fp8_linear_setup's, the same function both backends
// run before launching.
#include "runtime/backends/quantize_fp8_geometry.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/ops/op_rules.h"

namespace kiln {
namespace {

Status fp8_rule(RuleContext& c) {
  const bool conv = c.node().op == "Fp8Conv";
  KILN_TRY(c.inputs(5, 8));
  KILN_TRY(c.outputs(1, 1));
  int64_t saturate, odt;
  KILN_TRY(c.int_attr_in("saturate", 1, 0, 1, &saturate));
  KILN_TRY(c.int_attr("output_dtype", static_cast<int64_t>(DType::kFloat32), &odt));
  linear::Epilogue ep;
  KILN_TRY(rules::fused_epilogue(c, &ep));
  // output_dtype records the ONNX form; a folded DequantizeLinear makes the output float32 (or
  // float16 for FP16 readers, compiler/passes/convert_fp16.cpp)
  // (compiler/passes/fuse_quantized.cpp) and the kernels follow the output tensor.
  const DType y = c.planned_output(0).dtype;
  if (fp8_kind(static_cast<DType>(odt)) < 0 || fp8_out_kind(y) < 0)
    return c.fail("output " + dtype_name(y) + " (output_dtype " + std::to_string(odt) +
                  ") is not float32, float16, float8e4m3fn or float8e5m2");
  const Shape& x = c.shape(0);
  const Shape& w = c.shape(2);
  Shape out;
  if (conv) {
    KILN_TRY(rules::conv_geometry(c, x, w, &out));
  } else {
    if (x.empty() || w.size() != 2 || x.back() != w[0])
      return c.fail("a " + shape_str(x) + " and b " + shape_str(w) + " do not fit [.., M, K] x [K, N]");
    out = x;
    out.back() = w[1];
  }
  std::vector<Fp8Operand> ops;
  for (size_t i = 0; i < c.num_inputs(); ++i) ops.push_back(Fp8Operand{c.dtype(i), c.shape(i)});
  Fp8Linear f;
  Status st = fp8_linear_setup(c.node(), ops, Fp8Operand{y, out}, &f);
  if (!st) return invalid_plan(st.message());
  c.set_output(0, y, out);
  return Status::ok();
}

}  // namespace

void register_quantize_fp8_rules(RuleRegistry& r) {
  r.add("Fp8Conv", fp8_rule);
  r.add("Fp8MatMul", fp8_rule);
}

}  // namespace kiln
