// Conv, ConvTranspose, Gemm, MatMul. The shape rules canonicalize every attribute to its
// explicit form (pads, strides, dilations, group, kernel_shape, output_padding for
// convolutions; transA/transB/alpha/beta for Gemm) so the runtime kernels never re-derive
// auto_pad or defaults. Fused-epilogue attributes: runtime/ops/linear_epilogue.h.
#include <string>

#include "compiler/ops/op_schema.h"
#include "runtime/ops/linear_epilogue.h"

namespace kiln {
namespace {

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// Inputs beyond the ONNX ones: the residual (input 3) of the fused-epilogue form
// (runtime/ops/linear_epilogue.h), which the fusion passes write and which a graph
// may carry when inferred again; only present together with its `residual` attribute.
size_t fused_inputs(InferContext& c) {
  return c.attrs().get_int(linear::kAttrResidual, 0) != 0 ? 1 : 0;
}

Status check_fused_epilogue(InferContext& c, const Shape& out) {
  linear::Epilogue e;
  KILN_TRY_CTX(linear::read_epilogue(c.attrs(), &e), c.node().describe());
  if (e.residual) {
    if (!c.has_input(linear::kResidualInput)) return c.fail("fused residual input 3 is missing");
    if (c.input_shape(linear::kResidualInput) != out || c.input_dtype(linear::kResidualInput) != DType::kFloat32)
      return c.fail("fused residual must be float32 " + shape_str(out) + ", got " +
                    shape_str(c.input_shape(linear::kResidualInput)));
  }
  return Status::ok();
}

Status require_float(InferContext& c, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (c.has_input(i) && c.input_dtype(i) != DType::kFloat32)
      return c.fail_unsupported("input " + std::to_string(i) + " has dtype " + dtype_name(c.input_dtype(i)) +
                                "; kiln implements " + c.node().op_type + " for float32 only");
  return Status::ok();
}

// Reads an ints attribute of `n` entries (default `def` each); fails on a wrong length or a
// value below `min`.
Status spatial_attr(InferContext& c, const char* name, size_t n, int64_t def, int64_t min,
                    std::vector<int64_t>* out) {
  *out = c.attrs().get_ints(name, std::vector<int64_t>(n, def));
  if (out->size() != n)
    return c.fail(std::string(name) + " has " + std::to_string(out->size()) + " entries, expected " +
                  std::to_string(n));
  for (int64_t v : *out) {
    if (v < min) return c.fail(std::string(name) + " " + ints_str(*out) + " has a value below " + std::to_string(min));
    if (v > kMaxGeometry) return c.fail_unsupported(std::string(name) + " " + ints_str(*out) + " has a value above 2^30");
  }
  return Status::ok();
}

struct ConvGeometry {
  int64_t group = 1;
  std::vector<int64_t> kernel, strides, dilations, pads;
};

// Validates X/W/B of a Conv or ConvTranspose and reads the attributes shared by both.
Status read_conv_common(InferContext& c, bool transpose, ConvGeometry* g) {
  KILN_TRY(c.require_inputs(2, 3 + fused_inputs(c)));
  KILN_TRY(require_float(c, 3));
  const Shape& x = c.input_shape(0);
  const Shape& w = c.input_shape(1);
  if (x.size() < 3)
    return c.fail("X must have rank >= 3 (N x C x spatial...), got " + shape_str(x));
  if (w.size() != x.size())
    return c.fail("W " + shape_str(w) + " must have the rank of X " + shape_str(x));
  const size_t sp = x.size() - 2;
  g->group = c.attrs().get_int("group", 1);
  if (g->group < 1) return c.fail("group must be >= 1, got " + std::to_string(g->group));
  const int64_t C = x[1];
  if (!transpose) {
    if (w[1] * g->group != C)
      return c.fail("W " + shape_str(w) + " with group " + std::to_string(g->group) + " expects " +
                    std::to_string(w[1] * g->group) + " input channels, X " + shape_str(x) + " has " +
                    std::to_string(C));
    if (w[0] % g->group)
      return c.fail("W's output channels " + std::to_string(w[0]) + " are not divisible by group " +
                    std::to_string(g->group));
  } else {
    if (w[0] != C)
      return c.fail("W " + shape_str(w) + " expects " + std::to_string(w[0]) + " input channels, X " +
                    shape_str(x) + " has " + std::to_string(C));
    if (C % g->group)
      return c.fail("input channels " + std::to_string(C) + " are not divisible by group " +
                    std::to_string(g->group));
  }
  g->kernel.assign(w.begin() + 2, w.end());
  if (c.attrs().has("kernel_shape") && c.attrs().get_ints("kernel_shape") != g->kernel)
    return c.fail("kernel_shape " + ints_str(c.attrs().get_ints("kernel_shape")) +
                  " does not match W's spatial dims " + shape_str(g->kernel));
  for (int64_t k : g->kernel)
    if (k < 1) return c.fail("W " + shape_str(w) + " has an empty kernel");
  for (size_t i = 0; i < g->kernel.size(); ++i)
    if (g->kernel[i] > kMaxGeometry || x[2 + i] > kMaxGeometry)
      return c.fail_unsupported("X " + shape_str(x) + " or W " + shape_str(w) + " has a spatial dim above 2^30");
  KILN_TRY(spatial_attr(c, "strides", sp, 1, 1, &g->strides));
  KILN_TRY(spatial_attr(c, "dilations", sp, 1, 1, &g->dilations));
  KILN_TRY(spatial_attr(c, "pads", 2 * sp, 0, 0, &g->pads));
  if (c.has_input(2)) {
    const int64_t m = transpose ? w[1] * g->group : w[0];
    if (c.input_shape(2) != Shape{m})
      return c.fail("bias B must have shape [" + std::to_string(m) + "], got " + shape_str(c.input_shape(2)));
  }
  for (int64_t d : x)
    if (d == 0) return c.fail_unsupported("empty input " + shape_str(x));
  return Status::ok();
}

void write_conv_attrs(InferContext& c, const ConvGeometry& g) {
  Attributes& a = c.mutable_attrs();
  a.erase("auto_pad");
  a.set("group", g.group);
  a.set("kernel_shape", g.kernel);
  a.set("strides", g.strides);
  a.set("dilations", g.dilations);
  a.set("pads", g.pads);
}

Status infer_conv(InferContext& c) {
  ConvGeometry g;
  KILN_TRY(read_conv_common(c, false, &g));
  const Shape& x = c.input_shape(0);
  const size_t sp = x.size() - 2;
  const std::string auto_pad = c.attrs().get_string("auto_pad", "NOTSET");
  Shape out = {x[0], c.input_shape(1)[0]};
  for (size_t i = 0; i < sp; ++i) {
    const int64_t in = x[2 + i], s = g.strides[i];
    const int64_t dk = (g.kernel[i] - 1) * g.dilations[i] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t o = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (o - 1) * s + dk - in);
      // SAME_UPPER puts the odd padding at the end, SAME_LOWER at the beginning.
      g.pads[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pads[i + sp] = total - g.pads[i];
    } else if (auto_pad == "VALID") {
      g.pads[i] = g.pads[i + sp] = 0;
    } else if (auto_pad != "NOTSET") {
      return c.fail("unknown auto_pad '" + auto_pad + "'");
    }
    const int64_t padded = in + g.pads[i] + g.pads[i + sp];
    if (padded < dk)
      return c.fail("spatial dim " + std::to_string(i) + ": padded input " + std::to_string(padded) +
                    " is smaller than the dilated kernel " + std::to_string(dk));
    out.push_back((padded - dk) / s + 1);
  }
  write_conv_attrs(c, g);
  KILN_TRY(check_fused_epilogue(c, out));
  c.set_output(0, DType::kFloat32, out);
  return Status::ok();
}

Status infer_conv_transpose(InferContext& c) {
  ConvGeometry g;
  KILN_TRY(read_conv_common(c, true, &g));
  const Shape& x = c.input_shape(0);
  const size_t sp = x.size() - 2;
  std::vector<int64_t> out_pad;
  KILN_TRY(spatial_attr(c, "output_padding", sp, 0, 0, &out_pad));
  const std::string auto_pad = c.attrs().get_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    return c.fail("unknown auto_pad '" + auto_pad + "'");
  std::vector<int64_t> target = c.attrs().get_ints("output_shape");
  // output_shape may list only the spatial dims or (as some exporters write) all of them.
  if (target.size() == sp + 2) target.erase(target.begin(), target.begin() + 2);
  if (!target.empty() && target.size() != sp)
    return c.fail("output_shape " + ints_str(c.attrs().get_ints("output_shape")) + " has the wrong length");
  for (int64_t t : target)
    if (t < 0 || t > kMaxGeometry) return c.fail("output_shape " + ints_str(target) + " must be in [0, 2^30]");
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  if (auto_pad == "VALID") std::fill(g.pads.begin(), g.pads.end(), 0);
  Shape out = {x[0], c.input_shape(1)[1] * g.group};
  for (size_t i = 0; i < sp; ++i) {
    const int64_t in = x[2 + i], s = g.strides[i];
    const int64_t dk = (g.kernel[i] - 1) * g.dilations[i] + 1;
    if (out_pad[i] >= s && out_pad[i] >= g.dilations[i])
      return c.fail("output_padding " + ints_str(out_pad) + " must be smaller than the stride or the dilation");
    const int64_t full = s * (in - 1) + out_pad[i] + dk;
    if (!target.empty() || same) {
      // The spec's rule: padding is derived from the requested output size; SAME_UPPER puts the
      // odd unit at the end, everything else at the beginning.
      const int64_t o = target.empty() ? in * s : target[i];
      const int64_t total = full - o;
      if (total < 0 && !target.empty()) {
        // A larger output than the kernel covers: the extra positions get only the bias.
        g.pads[i] = 0;
        g.pads[i + sp] = total;
      } else {
        g.pads[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
        g.pads[i + sp] = total - g.pads[i];
      }
    }
    const int64_t o = full - g.pads[i] - g.pads[i + sp];
    if (o < 1) return c.fail("spatial dim " + std::to_string(i) + " would have size " + std::to_string(o));
    out.push_back(o);
  }
  write_conv_attrs(c, g);
  c.mutable_attrs().erase("output_shape");
  c.mutable_attrs().set("output_padding", out_pad);
  KILN_TRY(check_fused_epilogue(c, out));
  c.set_output(0, DType::kFloat32, out);
  return Status::ok();
}

Status infer_gemm(InferContext& c) {
  const int v = c.version();
  KILN_TRY(c.require_inputs(v < 11 ? 3 : 2, 3 + fused_inputs(c)));
  KILN_TRY(require_float(c, 3));
  const Shape& a = c.input_shape(0);
  const Shape& b = c.input_shape(1);
  if (a.size() != 2 || b.size() != 2)
    return c.fail("A " + shape_str(a) + " and B " + shape_str(b) + " must be 2-D");
  const int64_t ta = c.attrs().get_int("transA", 0), tb = c.attrs().get_int("transB", 0);
  const int64_t M = ta ? a[1] : a[0], K = ta ? a[0] : a[1];
  const int64_t Kb = tb ? b[1] : b[0], N = tb ? b[0] : b[1];
  if (K != Kb)
    return c.fail("inner dims differ: A " + shape_str(a) + (ta ? " (transposed)" : "") + " and B " + shape_str(b) +
                  (tb ? " (transposed)" : ""));
  if (c.has_input(2)) {
    const Shape& cs = c.input_shape(2);
    // Before opset 7 C broadcasts only with broadcast=1 and must otherwise be exactly M x N.
    const bool legacy_exact = v < 7 && c.attrs().get_int("broadcast", 0) == 0;
    bool ok = cs.size() <= 2;
    if (ok && legacy_exact) ok = cs == Shape{M, N};
    if (ok) {
      const int64_t cm = cs.size() == 2 ? cs[0] : 1, cn = cs.empty() ? 1 : cs.back();
      ok = (cm == 1 || cm == M) && (cn == 1 || cn == N);
    }
    if (!ok)
      return c.fail("C " + shape_str(cs) + " does not broadcast to the " + shape_str({M, N}) + " result" +
                    (legacy_exact ? " (broadcast=0 before opset 7 needs the exact shape)" : ""));
  }
  Attributes& at = c.mutable_attrs();
  at.erase("broadcast");
  at.set("transA", ta);
  at.set("transB", tb);
  at.set("alpha", c.attrs().get_float("alpha", 1.f));
  at.set("beta", c.attrs().get_float("beta", 1.f));
  KILN_TRY(check_fused_epilogue(c, {M, N}));
  c.set_output(0, DType::kFloat32, {M, N});
  return Status::ok();
}

Status infer_matmul(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(require_float(c, 2));
  Shape a = c.input_shape(0), b = c.input_shape(1);
  if (a.empty() || b.empty()) return c.fail("MatMul operands must have rank >= 1");
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  if (a.back() != b[b.size() - 2])
    return c.fail("inner dims differ: " + shape_str(c.input_shape(0)) + " x " + shape_str(c.input_shape(1)));
  Shape batch;
  KILN_TRY_CTX(broadcast_shapes(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2), &batch),
               c.node().describe() + ": batch dims");
  Shape out = batch;
  if (!a1) out.push_back(a[a.size() - 2]);
  if (!b1) out.push_back(b.back());
  c.set_output(0, DType::kFloat32, out);
  return Status::ok();
}

}  // namespace

void register_linear_schemas(SchemaRegistry& r) {
  r.add({"Conv", {1, 11, 22}, infer_conv}).fp16(Fp16::kCompute);
  r.add({"ConvTranspose", {1, 11, 22}, infer_conv_transpose}).fp16(Fp16::kCompute);
  r.add({"Gemm", {1, 6, 7, 9, 11, 13}, infer_gemm}).fp16(Fp16::kCompute);
  r.add({"MatMul", {1, 9, 13}, infer_matmul}).fp16(Fp16::kCompute);
}

}  // namespace kiln
