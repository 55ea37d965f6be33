// Rules of the FP8 linear ops (canonical form in runtime/backends/cpu/quantize_fp8_common.h):
//   Fp8Conv (x, x_scale, w, w_scale, y_scale[, B, R, R_scale]) {conv attributes, saturate,
//     output_dtype, fused epilogue}
//   Fp8MatMul (a, a_scale, b, b_scale, y_scale[, bias, R, R_scale]) {saturate, output_dtype,
//     fused epilogue}
// The geometry is checked here with overflow-checked arithmetic; the scale, bias and residual
// checks are fp8_linear_setup's, the same function both backends run before launching.
#include "runtime/backends/cpu/quantize_fp8_common.h"
#include "runtime/ops/op_rules.h"
#include "runtime/ops/rules/linear_rules.h"

namespace kiln {
namespace {

Status fp8_rule(RuleContext& c) {
  const bool conv = c.node().op == "Fp8Conv";
  KILN_TRY(c.inputs(5, 8));
  KILN_TRY(c.outputs(1, 1));
  int64_t saturate, odt;
  std::string act;
  float alpha, beta;
  int64_t residual;
  KILN_TRY(c.int_attr_in("saturate", 1, 0, 1, &saturate));
  KILN_TRY(c.int_attr("output_dtype", static_cast<int64_t>(DType::kFloat32), &odt));
  KILN_TRY(c.string_attr(linear::kAttrActivation, "", &act));
  KILN_TRY(c.float_attr(linear::kAttrActAlpha, 0.f, &alpha));
  KILN_TRY(c.float_attr(linear::kAttrActBeta, 0.f, &beta));
  KILN_TRY(c.int_attr_in(linear::kAttrResidual, 0, 0, 2, &residual));
  // output_dtype records the ONNX form; a folded DequantizeLinear makes the output float32
  // (compiler/passes/fuse_quantized.cpp) and the kernels follow the output tensor.
  const DType y = c.planned_output(0).dtype;
  if (fp8_kind(static_cast<DType>(odt)) < 0 || fp8_kind(y) < 0)
    return c.fail("output " + dtype_name(y) + " (output_dtype " + std::to_string(odt) +
                  ") is not float32, float8e4m3fn or float8e5m2");
  const Shape& x = c.shape(0);
  const Shape& w = c.shape(2);
  Shape out;
  if (conv) {
    int64_t group;
    std::vector<int64_t> ks, st, dl, pd;
    KILN_TRY(c.int_attr_in("group", 1, 1, rules::kMaxGeometry, &group));
    KILN_TRY(c.ints_attr("kernel_shape", &ks));
    KILN_TRY(c.ints_attr("strides", &st));
    KILN_TRY(c.ints_attr("dilations", &dl));
    KILN_TRY(c.ints_attr("pads", &pd));
    if (x.size() < 3 || x.size() > 5 || w.size() != x.size())
      return c.fail("x " + shape_str(x) + " and w " + shape_str(w) + " do not fit a 1- to 3-D convolution");
    const size_t nd = x.size() - 2;
    if (ks.size() != nd || st.size() != nd || dl.size() != nd || pd.size() != 2 * nd)
      return c.fail("kernel_shape, strides, dilations and pads must be explicit for " + std::to_string(nd) + " spatial dims");
    int64_t wc;
    if (w[0] % group || !mul_ok(w[1], group, &wc) || wc != x[1])
      return c.fail("w " + shape_str(w) + " with group " + std::to_string(group) + " does not fit x " + shape_str(x));
    out = {x[0], w[0]};
    for (size_t d = 0; d < nd; ++d) {
      int64_t o;
      if (ks[d] != w[2 + d] || !linear::conv_extent(false, x[2 + d], ks[d], st[d], dl[d], pd[d], pd[nd + d], 0, &o))
        return c.fail("convolution attributes do not fit x " + shape_str(x) + " and w " + shape_str(w));
      out.push_back(o);
    }
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
