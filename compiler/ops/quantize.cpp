// Quantization ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear (int8/uint8/int16/
// uint16/float8) and the integer linear algebra ops MatMulInteger, QLinearMatMul, ConvInteger,
// QLinearConv (int8/uint8 with int32 accumulation).
//
// Canonical runtime forms (what runtime/backends/*/quantize*.cpp read):
//   QuantizeLinear / DequantizeLinear: inputs (x, scale[, zero_point]); attrs
//     qmode (0 per-tensor, 1 per-axis, 2 blocked), axis (normalized), block_size, saturate.
//     The quantized dtype is the output's (QuantizeLinear) or the input's (DequantizeLinear).
//   DynamicQuantizeLinear: as ONNX.
//   MatMulInteger: (A, B[, a_zp[, b_zp]]); QLinearMatMul: the 8 ONNX inputs. No attrs.
//   ConvInteger: (x, w[, x_zp[, w_zp]]); QLinearConv: the 8/9 ONNX inputs. Attrs kernel_shape,
//     strides, dilations, pads (explicit begin..., end...; auto_pad resolved here), group.
#include <algorithm>

#include "compiler/ops/op_schema.h"
#include "runtime/core/float8.h"
#include "runtime/ops/quantized_linear.h"

namespace kiln {
namespace {

std::string dims_str(const Shape& s) { return "[" + shape_str(s) + "]"; }

bool is_float8(DType t) {
  return t == DType::kFloat8E4M3FN || t == DType::kFloat8E4M3FNUZ || t == DType::kFloat8E5M2 ||
         t == DType::kFloat8E5M2FNUZ;
}

// The quantized dtypes each version of QuantizeLinear/DequantizeLinear admits, and whether kiln
// implements them. int4/uint4 (opset 21) have no kiln storage type.
Status check_quant_dtype(InferContext& c, DType t, const std::string& what, bool allow_int32) {
  const int v = c.version();
  const bool fp8 = is_float8(t);
  const bool wide = t == DType::kInt16 || t == DType::kUInt16;
  const bool known = t == DType::kInt8 || t == DType::kUInt8 || (allow_int32 && t == DType::kInt32) ||
                     (fp8 && v >= 19) || (wide && v >= 21);
  if (!known) {
    const int code = static_cast<int>(t);
    if (code == 21 || code == 22)
      return c.fail_unsupported(what + " has dtype " + std::string(code == 21 ? "uint4" : "int4") +
                                "; kiln has no 4-bit tensor storage");
    return c.fail(what + " has dtype " + dtype_name(t) + ", which " + c.node().op_type + "-" +
                  std::to_string(v) + " does not accept");
  }
  if (fp8 && !float8_is_supported(t))
    return c.fail_unsupported(what + " has dtype " + dtype_name(t) +
                              "; kiln supports float8e4m3fn and float8e5m2 (not the FNUZ variants)");
  return Status::ok();
}

// Works out per-tensor / per-axis / blocked quantization from the scale (and zero point) shapes
// and stores the canonical attributes.
Status resolve_quant_mode(InferContext& c, const std::string& scale_name, const std::string& zp_name) {
  const Shape& x = c.input_shape(0);
  const Shape& s = c.input_shape(1);
  const int64_t rank = static_cast<int64_t>(x.size());
  const int v = c.version();
  int64_t block = v >= 21 ? c.attrs().get_int("block_size", 0) : 0;
  if (block < 0) return c.fail("block_size must be >= 0, got " + std::to_string(block));
  int64_t axis = 0, qmode = 0;
  const int64_t raw_axis = v >= 13 ? c.attrs().get_int("axis", 1) : 1;
  if (block > 0) {
    qmode = 2;
    KILN_TRY_CTX(normalize_axis(raw_axis, rank, &axis), c.node().describe());
    if (s.size() != x.size())
      return c.fail(scale_name + " shape " + dims_str(s) + " must have the rank of x " + dims_str(x) +
                    " for blocked quantization (block_size=" + std::to_string(block) + ")");
    for (int64_t d = 0; d < rank; ++d) {
      const int64_t want = d == axis ? (x[d] + block - 1) / block : x[d];
      if (s[d] != want)
        return c.fail(scale_name + " shape " + dims_str(s) + " does not match x " + dims_str(x) +
                      " blocked by " + std::to_string(block) + " along axis " + std::to_string(axis) +
                      " (dim " + std::to_string(d) + " should be " + std::to_string(want) + ")");
    }
  } else if (shape_numel(s) == 1 && s.size() <= 1) {
    qmode = 0;  // a one-element 1-D scale is per-tensor, as the reference treats it
  } else if (s.size() == 1 && v >= 13) {
    qmode = 1;
    KILN_TRY_CTX(normalize_axis(raw_axis, rank, &axis), c.node().describe());
    if (s[0] != x[axis])
      return c.fail(scale_name + " has " + std::to_string(s[0]) + " elements but x " + dims_str(x) +
                    " has " + std::to_string(x[axis]) + " along axis " + std::to_string(raw_axis));
  } else {
    return c.fail(scale_name + " shape " + dims_str(s) + " is not a scalar" +
                  (v >= 13 ? std::string(" or a 1-D per-axis tensor") : std::string("")) +
                  (v >= 21 ? " (blocked quantization needs block_size > 0)" : ""));
  }
  if (c.has_input(2) && c.input_shape(2) != s &&
      !(shape_numel(c.input_shape(2)) == 1 && shape_numel(s) == 1 && c.input_shape(2).size() <= 1))
    return c.fail(zp_name + " shape " + dims_str(c.input_shape(2)) + " differs from " + scale_name + " shape " +
                  dims_str(s));
  Attributes a;
  a.set("qmode", qmode);
  a.set("axis", axis);
  a.set("block_size", block);
  a.set("saturate", static_cast<int64_t>(v >= 19 ? c.attrs().get_int("saturate", 1) : 1));
  c.mutable_attrs() = a;
  return Status::ok();
}

Status infer_quantize_linear(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 3));
  // float16 x with a float32 scale only as the FP16 pass makes it (Fp16::kReads): ONNX pairs a
  // float16 x with a float16 scale, which kiln refuses.
  KILN_TRY(c.require_dtype(0, {DType::kFloat32, DType::kFloat16}));
  KILN_TRY(c.require_dtype(1, {DType::kFloat32}));
  DType out = DType::kUInt8;
  const int64_t odt = c.version() >= 21 ? c.attrs().get_int("output_dtype", 0) : 0;
  if (odt != 0) out = static_cast<DType>(odt);
  if (c.has_input(2)) {
    const DType zt = c.input_dtype(2);
    if (odt != 0 && zt != out)
      return c.fail("output_dtype " + dtype_name(out) + " differs from y_zero_point's dtype " + dtype_name(zt));
    out = zt;
  }
  KILN_TRY(check_quant_dtype(c, out, c.has_input(2) ? "y_zero_point" : "output", false));
  // saturate only affects float8 outputs (integer outputs always saturate), as the spec says.
  KILN_TRY(resolve_quant_mode(c, "y_scale", "y_zero_point"));
  c.set_output(0, out, c.input_shape(0));
  return Status::ok();
}

Status infer_dequantize_linear(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 3));
  const DType xt = c.input_dtype(0);
  KILN_TRY(check_quant_dtype(c, xt, "x", true));
  KILN_TRY(c.require_dtype(1, {DType::kFloat32}));
  if (c.has_input(2) && c.input_dtype(2) != xt)
    return c.fail("x_zero_point has dtype " + dtype_name(c.input_dtype(2)) + ", x has " + dtype_name(xt));
  KILN_TRY(resolve_quant_mode(c, "x_scale", "x_zero_point"));
  c.mutable_attrs().erase("saturate");
  c.set_output(0, DType::kFloat32, c.input_shape(0));
  return Status::ok();
}

Status infer_dynamic_quantize_linear(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  KILN_TRY(c.require_dtype(0, {DType::kFloat32}));
  c.set_output(0, DType::kUInt8, c.input_shape(0));
  c.set_output(1, DType::kFloat32, {});
  c.set_output(2, DType::kUInt8, {});
  c.mutable_attrs() = Attributes();
  return Status::ok();
}

// ---- integer matmul ----

// A zero point or scale of the A side ("rows", dim M) or the B side ("columns", dim N) of a
// matmul: a scalar, a 1-D vector over M (N), or an N-D tensor [..., M, 1] ([..., 1, N]) whose
// leading dims broadcast to the output batch.
Status check_matmul_param(InferContext& c, size_t i, const std::string& name, bool rows, int64_t len,
                          const Shape& out_batch, bool allow_nd) {
  if (!c.has_input(i)) return Status::ok();
  const Shape& s = c.input_shape(i);
  const std::string side = rows ? "rows of A (" : "columns of B (";
  if (shape_numel(s) == 1 && s.size() <= 1) return Status::ok();
  if (s.size() == 1) {
    if (s[0] != len)
      return c.fail(name + " has " + std::to_string(s[0]) + " elements; a per-" + (rows ? "row" : "column") +
                    " " + name + " needs one per " + side + std::to_string(len) + ")");
    return Status::ok();
  }
  if (!allow_nd || s.size() < 2)
    return c.fail(name + " shape " + dims_str(s) + " must be a scalar or a 1-D tensor of " + std::to_string(len));
  const int64_t r = static_cast<int64_t>(s.size());
  const int64_t want_m = rows ? len : 1, want_n = rows ? 1 : len;
  if (s[r - 2] != want_m || s[r - 1] != want_n)
    return c.fail(name + " shape " + dims_str(s) + " must end in [" + std::to_string(want_m) + ", " +
                  std::to_string(want_n) + "]");
  Shape lead(s.begin(), s.end() - 2), b;
  if (!broadcast_shapes(lead, out_batch, &b) || b != out_batch)
    return c.fail(name + " shape " + dims_str(s) + " does not broadcast to the output batch " + dims_str(out_batch));
  return Status::ok();
}

// Matmul shape rule (numpy, 1-D operands promoted and the promoted dims dropped).
Status matmul_shape(InferContext& c, const Shape& a0, const Shape& b0, Shape* out, Shape* batch, int64_t* M,
                    int64_t* K, int64_t* N) {
  if (a0.empty() || b0.empty()) return c.fail("MatMul operands must have rank >= 1");
  Shape a = a0, b = b0;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  *M = a[a.size() - 2];
  *K = a.back();
  *N = b.back();
  if (b[b.size() - 2] != *K)
    return c.fail("inner dims differ: A " + dims_str(a0) + " and B " + dims_str(b0));
  Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  if (!broadcast_shapes(ab, bb, batch))
    return c.fail("batch dims of A " + dims_str(a0) + " and B " + dims_str(b0) + " do not broadcast");
  *out = *batch;
  if (a0.size() > 1) out->push_back(*M);
  if (b0.size() > 1) out->push_back(*N);
  return Status::ok();
}

Status require_int8ish(InferContext& c, size_t i) {
  if (!c.has_input(i)) return Status::ok();
  return c.require_dtype(i, {DType::kUInt8, DType::kInt8});
}

Status infer_matmul_integer(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 4));
  for (size_t i = 0; i < 4; ++i) KILN_TRY(require_int8ish(c, i));
  if (c.has_input(2) && c.input_dtype(2) != c.input_dtype(0)) return c.fail("a_zero_point's dtype differs from A's");
  if (c.has_input(3) && c.input_dtype(3) != c.input_dtype(1)) return c.fail("b_zero_point's dtype differs from B's");
  Shape out, batch;
  int64_t M, K, N;
  KILN_TRY(matmul_shape(c, c.input_shape(0), c.input_shape(1), &out, &batch, &M, &K, &N));
  KILN_TRY(check_matmul_param(c, 2, "a_zero_point", true, M, batch, true));
  KILN_TRY(check_matmul_param(c, 3, "b_zero_point", false, N, batch, true));
  c.mutable_attrs() = Attributes();
  c.set_output(0, DType::kInt32, out);
  return Status::ok();
}

Status require_per_tensor(InferContext& c, size_t i, const std::string& name) {
  if (c.has_input(i) && !(shape_numel(c.input_shape(i)) == 1 && c.input_shape(i).size() <= 1))
    return c.fail_unsupported(name + " shape " + dims_str(c.input_shape(i)) +
                              " is not a scalar; kiln supports a per-tensor " + name + " here");
  return Status::ok();
}

Status infer_qlinear_matmul(InferContext& c) {
  KILN_TRY(c.require_inputs(8, 8));
  for (size_t i : {0, 2, 3, 5, 7}) KILN_TRY(require_int8ish(c, i));
  for (size_t i : {1, 4, 6}) KILN_TRY(c.require_dtype(i, {DType::kFloat32}));
  if (c.input_dtype(2) != c.input_dtype(0)) return c.fail("a_zero_point's dtype differs from a's");
  if (c.input_dtype(5) != c.input_dtype(3)) return c.fail("b_zero_point's dtype differs from b's");
  Shape out, batch;
  int64_t M, K, N;
  KILN_TRY(matmul_shape(c, c.input_shape(0), c.input_shape(3), &out, &batch, &M, &K, &N));
  // Per-tensor, per-row (a) or per-column (b) parameters: scalars, vectors or [.., M, 1] /
  // [.., 1, N]. A scale and its zero point have the same shape (the spec), so the runtime
  // indexes both the same way.
  KILN_TRY(check_matmul_param(c, 1, "a_scale", true, M, batch, true));
  KILN_TRY(check_matmul_param(c, 2, "a_zero_point", true, M, batch, true));
  KILN_TRY(check_matmul_param(c, 4, "b_scale", false, N, batch, true));
  KILN_TRY(check_matmul_param(c, 5, "b_zero_point", false, N, batch, true));
  for (size_t i : {1, 4}) {
    const Shape& s = c.input_shape(i);
    const Shape& z = c.input_shape(i + 1);
    if ((s.size() >= 2 || z.size() >= 2) && s != z)
      return c.fail(std::string(i == 1 ? "a" : "b") + "_scale shape " + dims_str(s) + " and " +
                    (i == 1 ? "a" : "b") + "_zero_point shape " + dims_str(z) + " must be the same");
  }
  KILN_TRY(require_per_tensor(c, 6, "y_scale"));
  KILN_TRY(require_per_tensor(c, 7, "y_zero_point"));
  c.mutable_attrs() = Attributes();
  c.set_output(0, c.input_dtype(7), out);
  return Status::ok();
}

// ---- integer convolution ----

Status resolve_conv(InferContext& c, size_t xi, size_t wi, Shape* out) {
  const Shape& x = c.input_shape(xi);
  const Shape& w = c.input_shape(wi);
  if (x.size() < 3) return c.fail("x " + dims_str(x) + " must have rank >= 3 (N, C, spatial...)");
  if (w.size() != x.size()) return c.fail("w " + dims_str(w) + " must have the rank of x " + dims_str(x));
  const size_t nd = x.size() - 2;
  const int64_t group = c.attrs().get_int("group", 1);
  if (group < 1 || x[1] % group || w[0] % group)
    return c.fail("group " + std::to_string(group) + " must divide the input channels (" + std::to_string(x[1]) +
                  ") and the output channels (" + std::to_string(w[0]) + ")");
  if (w[1] * group != x[1])
    return c.fail("w " + dims_str(w) + " expects " + std::to_string(w[1] * group) + " input channels, x " +
                  dims_str(x) + " has " + std::to_string(x[1]));
  std::vector<int64_t> ks = c.attrs().get_ints("kernel_shape", Shape(w.begin() + 2, w.end()));
  std::vector<int64_t> strides = c.attrs().get_ints("strides", std::vector<int64_t>(nd, 1));
  std::vector<int64_t> dil = c.attrs().get_ints("dilations", std::vector<int64_t>(nd, 1));
  std::vector<int64_t> pads = c.attrs().get_ints("pads", std::vector<int64_t>(2 * nd, 0));
  const std::string auto_pad = c.attrs().get_string("auto_pad", "NOTSET");
  if (ks.size() != nd || strides.size() != nd || dil.size() != nd || pads.size() != 2 * nd)
    return c.fail("kernel_shape/strides/dilations/pads do not match " + std::to_string(nd) + " spatial dims");
  for (size_t d = 0; d < nd; ++d) {
    if (ks[d] != w[2 + d]) return c.fail("kernel_shape differs from w " + dims_str(w));
    if (strides[d] < 1 || dil[d] < 1) return c.fail("strides and dilations must be >= 1");
    if (pads[d] < 0 || pads[nd + d] < 0) return c.fail("pads must be >= 0");
    for (int64_t v : {ks[d], strides[d], dil[d], pads[d], pads[nd + d], x[2 + d]})
      if (v > kMaxGeometry) return c.fail_unsupported("a spatial dim or convolution attribute is above 2^30");
  }
  *out = {x[0], w[0]};
  for (size_t d = 0; d < nd; ++d) {
    const int64_t ext = (ks[d] - 1) * dil[d] + 1;
    int64_t o;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      o = (x[2 + d] + strides[d] - 1) / strides[d];
      const int64_t total = std::max<int64_t>(0, (o - 1) * strides[d] + ext - x[2 + d]);
      pads[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[nd + d] = total - pads[d];
    } else if (auto_pad == "VALID") {
      pads[d] = pads[nd + d] = 0;
      o = (x[2 + d] - ext) / strides[d] + 1;
    } else if (auto_pad == "NOTSET") {
      o = (x[2 + d] + pads[d] + pads[nd + d] - ext) / strides[d] + 1;
    } else {
      return c.fail("unknown auto_pad '" + auto_pad + "'");
    }
    if (x[2 + d] + pads[d] + pads[nd + d] < ext || o < 1)
      return c.fail("the kernel (extent " + std::to_string(ext) + ") does not fit x " + dims_str(x) + " along dim " +
                    std::to_string(2 + d));
    out->push_back(o);
  }
  Attributes a;
  a.set("kernel_shape", ks);
  a.set("strides", strides);
  a.set("dilations", dil);
  a.set("pads", pads);
  a.set("group", group);
  c.mutable_attrs() = a;
  return Status::ok();
}

// Per-output-channel parameter (w zero point or scale): scalar or [M].
Status check_channel_param(InferContext& c, size_t i, const std::string& name, int64_t m) {
  if (!c.has_input(i)) return Status::ok();
  const Shape& s = c.input_shape(i);
  if (shape_numel(s) == 1 && s.size() <= 1) return Status::ok();
  if (s.size() == 1 && s[0] == m) return Status::ok();
  return c.fail(name + " shape " + dims_str(s) + " must be a scalar or a 1-D tensor of the " + std::to_string(m) +
                " output channels");
}

Status infer_conv_integer(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 4));
  for (size_t i = 0; i < 4; ++i) KILN_TRY(require_int8ish(c, i));
  if (c.has_input(2) && c.input_dtype(2) != c.input_dtype(0)) return c.fail("x_zero_point's dtype differs from x's");
  if (c.has_input(3) && c.input_dtype(3) != c.input_dtype(1)) return c.fail("w_zero_point's dtype differs from w's");
  Shape out;
  KILN_TRY(resolve_conv(c, 0, 1, &out));
  KILN_TRY(require_per_tensor(c, 2, "x_zero_point"));
  KILN_TRY(check_channel_param(c, 3, "w_zero_point", c.input_shape(1)[0]));
  c.set_output(0, DType::kInt32, out);
  return Status::ok();
}

Status infer_qlinear_conv(InferContext& c) {
  KILN_TRY(c.require_inputs(8, 9));
  for (size_t i : {0, 2, 3, 5, 7}) KILN_TRY(require_int8ish(c, i));
  for (size_t i : {1, 4, 6}) KILN_TRY(c.require_dtype(i, {DType::kFloat32}));
  if (c.input_dtype(2) != c.input_dtype(0)) return c.fail("x_zero_point's dtype differs from x's");
  if (c.input_dtype(5) != c.input_dtype(3)) return c.fail("w_zero_point's dtype differs from w's");
  Shape out;
  KILN_TRY(resolve_conv(c, 0, 3, &out));
  const int64_t m = c.input_shape(3)[0];
  KILN_TRY(require_per_tensor(c, 1, "x_scale"));
  KILN_TRY(require_per_tensor(c, 2, "x_zero_point"));
  KILN_TRY(check_channel_param(c, 4, "w_scale", m));
  KILN_TRY(check_channel_param(c, 5, "w_zero_point", m));
  KILN_TRY(require_per_tensor(c, 6, "y_scale"));
  KILN_TRY(require_per_tensor(c, 7, "y_zero_point"));
  if (c.has_input(8)) {
    KILN_TRY(c.require_dtype(8, {DType::kInt32}));
    if (c.input_shape(8) != Shape{m}) return c.fail("B must be a 1-D int32 tensor of the " + std::to_string(m) + " output channels");
  }
  c.set_output(0, c.input_dtype(7), out);
  return Status::ok();
}

}  // namespace

void register_quantize_schemas(SchemaRegistry& r) {
  r.add({"QuantizeLinear", {10, 13, 19, 21, 23, 24}, infer_quantize_linear}).fp16(Fp16::kReads);
  r.add({"DequantizeLinear", {10, 13, 19, 21, 23, 24}, infer_dequantize_linear});
  r.add({"DynamicQuantizeLinear", {11}, infer_dynamic_quantize_linear});
  r.add({"MatMulInteger", {10}, infer_matmul_integer});
  // Their fused epilogue's float output and float residual (fuse_quantized) may be float16.
  const int residual = static_cast<int>(kQResidualInput);
  r.add({"QLinearMatMul", {10, 21}, infer_qlinear_matmul}).fp16(Fp16::kFloatIo).fp16_reads(residual);
  r.add({"ConvInteger", {10}, infer_conv_integer});
  r.add({"QLinearConv", {10}, infer_qlinear_conv}).fp16(Fp16::kFloatIo).fp16_reads(residual);
}

}  // namespace kiln
