// Rules of the quantize family (runtime forms written by compiler/ops/quantize.cpp and
// compiler/passes/fuse_quantized.cpp; kernel geometry in runtime/backends/quantize_geometry.h):
//   QuantizeLinear (x, scale[, zp]) {qmode, axis, block_size, saturate}
//   DequantizeLinear (x, scale[, zp]) {qmode, axis, block_size}
//   DynamicQuantizeLinear (x) -> (y, scale, zero point)
//   MatMulInteger (a, b[, a_zp, b_zp])   ConvInteger (x, w[, x_zp, w_zp]) {conv attributes}
//   QLinearMatMul (a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp[, bias, R, R_s, R_zp]) {bias_columns,
//     fused epilogue}   QLinearConv (x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp[, B, R, R_s, R_zp])
//     {conv attributes, bias_columns, fused epilogue}
// Kernels index every scale and zero point by the geometry (per tensor, per row, per column),
// so their shapes are checked against it here.
#include "runtime/backends/quantize_geometry.h"
#include "runtime/core/float8.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/ops/op_rules.h"
#include "runtime/ops/rules/linear_rules.h"

namespace kiln {
namespace {

bool is_int8(DType t) { return t == DType::kInt8 || t == DType::kUInt8; }

int64_t count(const Shape& s) {
  int64_t n;
  return numel_ok(s, &n) ? n : -1;
}

// qmode / axis / block_size against x, and the scale (and zero point) shape they imply.
Status quant_params_rule(RuleContext& c) {
  int64_t qmode, axis, block;
  KILN_TRY(c.int_attr_in("qmode", 0, 0, 2, &qmode));
  KILN_TRY(c.int_attr("axis", 0, &axis));
  KILN_TRY(c.int_attr_in("block_size", 0, 0, rules::kMaxGeometry, &block));
  KILN_TRY(c.dtype_is(1, DType::kFloat32));
  const Shape& x = c.shape(0);
  const Shape& s = c.shape(1);
  if (qmode != 0) {
    if (x.empty()) return c.fail("per-axis and blocked quantization need x of rank >= 1");
    if (axis < 0 || axis >= c.rank(0)) return c.fail("axis " + std::to_string(axis) + " is out of range for " + shape_str(x));
  }
  int64_t want = 1;
  if (qmode == 1) want = x[axis];
  if (qmode == 2) {
    if (block < 1) return c.fail("blocked quantization needs block_size >= 1");
    Shape bs = x;
    bs[axis] = (x[axis] + block - 1) / block;
    if (s != bs) return c.fail("scale " + shape_str(s) + " must be " + shape_str(bs) + " for x " + shape_str(x) +
                               " in blocks of " + std::to_string(block));
    want = count(bs);
  }
  if (count(s) != want)
    return c.fail("scale " + shape_str(s) + " must have " + std::to_string(want) + " elements for x " + shape_str(x));
  if (c.has_input(2) && count(c.shape(2)) != want)
    return c.fail("zero point " + shape_str(c.shape(2)) + " must have " + std::to_string(want) + " elements");
  return Status::ok();
}

Status quantize_rule(RuleContext& c) {
  KILN_TRY(c.inputs(2, 3));
  KILN_TRY(c.outputs(1, 1));
  // float16 x: the FP16 pass hands a float16 producer's output to it directly.
  KILN_TRY(c.dtype_in(0, {DType::kFloat32, DType::kFloat16}));
  int64_t saturate;
  KILN_TRY(c.int_attr_in("saturate", 1, 0, 1, &saturate));
  KILN_TRY(quant_params_rule(c));
  // No attribute records the output dtype when there is no zero point (the kernel reads the
  // output's): check the plan's.
  const DType y = c.planned_output(0).dtype;
  if (!is_int8(y) && y != DType::kInt16 && y != DType::kUInt16 && y != DType::kFloat8E4M3FN && y != DType::kFloat8E5M2)
    return c.fail("output dtype " + dtype_name(y) + " is not a quantized type kiln implements");
  if (c.has_input(2) && c.dtype(2) != y)
    return c.fail("zero point is " + dtype_name(c.dtype(2)) + " but the output is " + dtype_name(y));
  c.set_output(0, y, c.shape(0));
  return Status::ok();
}

Status dequantize_rule(RuleContext& c) {
  KILN_TRY(c.inputs(2, 3));
  KILN_TRY(c.outputs(1, 1));
  KILN_TRY(c.dtype_in(0, {DType::kUInt8, DType::kInt8, DType::kUInt16, DType::kInt16, DType::kInt32,
                          DType::kFloat8E4M3FN, DType::kFloat8E5M2}));
  if (c.has_input(2) && c.dtype(2) != c.dtype(0))
    return c.fail("zero point is " + dtype_name(c.dtype(2)) + " but x is " + dtype_name(c.dtype(0)));
  KILN_TRY(quant_params_rule(c));
  c.set_output(0, DType::kFloat32, c.shape(0));
  return Status::ok();
}

Status dynamic_quantize_rule(RuleContext& c) {
  KILN_TRY(c.inputs(1, 1));
  KILN_TRY(c.outputs(3, 3));
  KILN_TRY(c.dtype_is(0, DType::kFloat32));
  c.set_output(0, DType::kUInt8, c.shape(0));
  c.set_output(1, DType::kFloat32, {});
  c.set_output(2, DType::kUInt8, {});
  return Status::ok();
}

// A per-row (rows) or per-column parameter of an integer MatMul: one value, [len], or N-D
// [.., len, 1] / [.., 1, len] whose leading dims broadcast to the output batch.
Status matmul_param(RuleContext& c, size_t i, bool rows, int64_t len, const Shape& batch) {
  if (!c.has_input(i)) return Status::ok();
  const Shape& s = c.shape(i);
  const int64_t n = count(s);
  if (n == 1 || (s.size() == 1 && s[0] == len)) return Status::ok();
  const size_t r = s.size();
  bool ok = r >= 2 && r - 2 <= batch.size() && s[r - 2] == (rows ? len : 1) && s[r - 1] == (rows ? 1 : len);
  for (size_t d = 0; ok && d + 2 < r; ++d) {
    const int64_t b = batch[batch.size() - (r - 2) + d];
    ok = s[d] == 1 || s[d] == b;
  }
  if (!ok)
    return c.fail("input " + std::to_string(i) + " " + shape_str(s) + " is not one value per tensor or per " +
                  (rows ? "row" : "column") + " (" + std::to_string(len) + ")");
  return Status::ok();
}

// A per-output-channel parameter of an integer convolution: one value or [m].
Status channel_param(RuleContext& c, size_t i, int64_t m) {
  if (!c.has_input(i)) return Status::ok();
  const int64_t n = count(c.shape(i));
  if (n == 1 || (c.shape(i).size() == 1 && n == m)) return Status::ok();
  return c.fail("input " + std::to_string(i) + " " + shape_str(c.shape(i)) + " must be one value or [" +
                std::to_string(m) + "]");
}

Status per_tensor(RuleContext& c, size_t i) {
  if (c.has_input(i) && count(c.shape(i)) != 1)
    return c.fail("input " + std::to_string(i) + " " + shape_str(c.shape(i)) + " must hold one value");
  return Status::ok();
}

Status matmul_shape(RuleContext& c, const Shape& a0, const Shape& b0, Shape* out, Shape* batch, int64_t* M,
                    int64_t* N) {
  if (a0.empty() || b0.empty()) return c.fail("operands must have rank >= 1");
  Shape a = a0, b = b0;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  *M = a[a.size() - 2];
  *N = b.back();
  if (b[b.size() - 2] != a.back()) return c.fail("inner dims of " + shape_str(a0) + " and " + shape_str(b0) + " differ");
  KILN_TRY(rules::broadcast(c, Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2), batch));
  *out = *batch;
  if (a0.size() > 1) out->push_back(*M);
  if (b0.size() > 1) out->push_back(*N);
  return Status::ok();
}

// kiln's fused epilogue of QLinearConv / QLinearMatMul (quantize_geometry.h).
Status qlinear_epilogue_rule(RuleContext& c, const Shape& out, int64_t bias_len_rows, int64_t bias_len_cols) {
  linear::Epilogue ep;
  KILN_TRY(rules::fused_epilogue(c, &ep));
  const int64_t residual = ep.residual;
  int64_t bias_cols;
  KILN_TRY(c.int_attr_in(kAttrBiasColumns, 0, 0, 1, &bias_cols));
  if (c.has_input(kQBiasInput)) {
    KILN_TRY(c.dtype_is(kQBiasInput, DType::kInt32));
    const int64_t want = bias_cols ? bias_len_cols : bias_len_rows;
    if (c.shape(kQBiasInput) != Shape{want})
      return c.fail("bias " + shape_str(c.shape(kQBiasInput)) + " must be [" + std::to_string(want) + "]");
  }
  if (residual) {
    if (!c.has_input(kQResidualInput)) return c.fail("fused residual input 9 is missing");
    if (c.shape(kQResidualInput) != out)
      return c.fail("fused residual " + shape_str(c.shape(kQResidualInput)) + " must have the output's shape " + shape_str(out));
    const DType rt = c.dtype(kQResidualInput);
    if (is_int8(rt)) {
      KILN_TRY(c.dtype_is(kQResidualScaleInput, DType::kFloat32));
      KILN_TRY(per_tensor(c, kQResidualScaleInput));
      if (c.has_input(kQResidualZeroPointInput)) {
        KILN_TRY(c.dtype_in(kQResidualZeroPointInput, {DType::kInt8, DType::kUInt8}));
        KILN_TRY(per_tensor(c, kQResidualZeroPointInput));
      }
    } else if (rt != DType::kFloat32 && rt != DType::kFloat16) {
      return c.fail("fused residual must be float32, float16, int8 or uint8");
    }
  }
  return Status::ok();
}

Status qgemm_rule(RuleContext& c) {
  const std::string& op = c.node().op;
  const bool qlinear = op == "QLinearMatMul" || op == "QLinearConv";
  const bool conv = op == "ConvInteger" || op == "QLinearConv";
  const QGemmInputs in = qgemm_inputs(op);
  KILN_TRY(c.inputs(qlinear ? 8 : 2, qlinear ? 12 : 4));
  KILN_TRY(c.outputs(1, 1));
  for (int i : {in.a, in.b}) KILN_TRY(c.dtype_in(i, {DType::kInt8, DType::kUInt8}));
  if (c.has_input(in.za) && c.dtype(in.za) != c.dtype(in.a)) return c.fail("the row-side zero point's dtype differs from its operand's");
  if (c.has_input(in.zb) && c.dtype(in.zb) != c.dtype(in.b)) return c.fail("the column-side zero point's dtype differs from its operand's");
  // x / a is the input at 0 for every op; w / b is the other operand.
  const size_t x = 0, w = conv ? in.a : in.b;
  Shape out, batch;
  int64_t rows, cols;
  if (conv) {
    KILN_TRY(rules::conv_geometry(c, c.shape(x), c.shape(w), &out));
    rows = c.shape(w)[0];
    cols = 1;
    KILN_TRY(per_tensor(c, in.zb));  // the input's zero point
    KILN_TRY(channel_param(c, in.za, rows));
  } else {
    KILN_TRY(matmul_shape(c, c.shape(x), c.shape(w), &out, &batch, &rows, &cols));
    KILN_TRY(matmul_param(c, in.za, true, rows, batch));
    KILN_TRY(matmul_param(c, in.zb, false, cols, batch));
  }
  if (!qlinear) {
    c.set_output(0, DType::kInt32, out);
    return Status::ok();
  }
  for (int i : {in.sa, in.sb, in.sy}) KILN_TRY(c.dtype_is(i, DType::kFloat32));
  KILN_TRY(c.dtype_in(in.yzp, {DType::kInt8, DType::kUInt8}));
  KILN_TRY(per_tensor(c, in.sy));
  KILN_TRY(per_tensor(c, in.yzp));
  if (conv) {
    KILN_TRY(per_tensor(c, in.sb));
    KILN_TRY(channel_param(c, in.sa, rows));
  } else {
    KILN_TRY(matmul_param(c, in.sa, true, rows, batch));
    KILN_TRY(matmul_param(c, in.sb, false, cols, batch));
  }
  // Scales are read at their zero point's batch offsets: N-D ones must share its shape.
  for (auto [s, z] : {std::pair<int, int>{in.sa, in.za}, {in.sb, in.zb}})
    if ((c.shape(s).size() >= 2 || (c.has_input(z) && c.shape(z).size() >= 2)) &&
        (!c.has_input(z) || c.shape(s) != c.shape(z)))
      return c.fail("N-D scale " + shape_str(c.shape(s)) + " and its zero point must have one shape");
  KILN_TRY(qlinear_epilogue_rule(c, out, rows, cols));
  // Int8/uint8 output in the zero point's dtype, or float when a DequantizeLinear was folded in:
  // float32, or float16 where its readers run in FP16 (--fallback-precision fp16).
  const DType planned = c.planned_output(0).dtype;
  const DType y = planned == DType::kFloat32 || planned == DType::kFloat16 ? planned : c.dtype(in.yzp);
  c.set_output(0, y, out);
  return Status::ok();
}

}  // namespace

void register_quantize_rules(RuleRegistry& r) {
  r.add("QuantizeLinear", quantize_rule);
  r.add("DequantizeLinear", dequantize_rule);
  r.add("DynamicQuantizeLinear", dynamic_quantize_rule);
  for (const char* op : {"MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv"}) r.add(op, qgemm_rule);
}

}  // namespace kiln
