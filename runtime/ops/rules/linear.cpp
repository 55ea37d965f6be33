// Rules of the linear family (runtime forms written by compiler/ops/linear.cpp and the fusion
// passes; the epilogue convention is runtime/ops/linear_epilogue.h):
//   Conv {group, kernel_shape, strides, dilations, pads, channels_last}   ConvTranspose {... + output_padding}
//   Gemm {transA, transB, alpha, beta}   MatMul {}
// plus, on all four, the fused epilogue {activation, activation_alpha, activation_beta,
// residual}, and allow_tf32 on all but ConvTranspose. Inputs: 0, 1 operands, 2 bias (optional), 3 residual (with `residual` only). Every
// operand has the output's dtype: float32, or float16 after --precision fp16.
#include "runtime/ops/rules/linear_rules.h"

#include "runtime/ops/channels_last.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/ops/op_rules.h"

namespace kiln {

namespace linear {

// Output extent of one convolution axis, or false when a value overflows or the window does
// not fit: the forward form (x + pads - dilated kernel) / stride + 1, the transposed form
// stride * (x - 1) + output_padding + dilated kernel - pads. Every intermediate stays below
// 2^31 so the 32-bit OpenCL index math cannot wrap either.
bool conv_extent(bool transpose, int64_t x, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe, int64_t op,
                 int64_t* out) {
  constexpr int64_t kMax = rules::kMaxGeometry;
  if (x < 1 || k < 1 || s < 1 || d < 1 || x > kMax || k > kMax || s > kMax || d > kMax || pb < 0 || pb > kMax ||
      pe > kMax || pe < -kMax || op < 0 || op > kMax)
    return false;
  int64_t dk;
  if (!mul_ok(k - 1, d, &dk) || ++dk > kMax) return false;
  if (!transpose) {
    if (pe < 0) return false;
    const int64_t padded = x + pb + pe;  // < 3 * 2^31: no overflow
    if (padded > kMax || padded < dk) return false;
    *out = (padded - dk) / s + 1;
    return true;
  }
  int64_t full;
  if (!mul_ok(s, x - 1, &full) || !add_ok(full, op, &full) || !add_ok(full, dk, &full) || full > kMax) return false;
  const int64_t o = full - pb - pe;
  if (o < 1 || o > kMax) return false;
  *out = o;
  return true;
}

Status linear_output(const std::string& op, const Attributes& a, const std::vector<const Shape*>& in, Shape* out,
                     std::string* why) {
  auto bad = [&](const std::string& w) {
    *why = w;
    return invalid_plan(w);
  };
  auto input = [&](size_t i) -> const Shape* { return i < in.size() ? in[i] : nullptr; };
  if (!input(0) || !input(1)) return bad("missing operand");
  // Channels-last (runtime/ops/channels_last.h): ONNX's rule on the permuted shapes, the output
  // turned back.
  const bool last = op == "Conv" && is_channels_last(a);
  if (last && a.get_int("group", 1) != 1)
    return bad("channels_last takes group 1, not " + std::to_string(a.get_int("group", 1)));
  const Shape xf = last ? channels_first_shape(*in[0]) : Shape{}, wf = last ? channels_first_shape(*in[1]) : Shape{};
  const Shape& x = last ? xf : *in[0];
  const Shape& w = last ? wf : *in[1];
  if (op == "Conv" || op == "ConvTranspose") {
    const bool tr = op == "ConvTranspose";
    if (x.size() < 3 || x.size() > 5 || w.size() != x.size())
      return bad("X " + shape_str(x) + " and W " + shape_str(w) + " must have one rank, 3 to 5");
    const size_t sp = x.size() - 2;
    const int64_t group = a.get_int("group", 1);
    const auto st = a.get_ints("strides", std::vector<int64_t>(sp, 1));
    const auto dl = a.get_ints("dilations", std::vector<int64_t>(sp, 1));
    const auto pd = a.get_ints("pads", std::vector<int64_t>(2 * sp, 0));
    const auto opd = a.get_ints("output_padding", std::vector<int64_t>(sp, 0));
    if (group < 1 || group > rules::kMaxGeometry || st.size() != sp || dl.size() != sp || pd.size() != 2 * sp ||
        opd.size() != sp)
      return bad("group, strides, dilations, pads or output_padding do not match " + std::to_string(sp) +
                 " spatial dims");
    const int64_t C = x[1];
    if (C % group) return bad("input channels " + std::to_string(C) + " are not divisible by group " + std::to_string(group));
    int64_t M;
    if (tr) {
      if (w[0] != C) return bad("W " + shape_str(w) + " does not match the " + std::to_string(C) + " input channels");
      if (!mul_ok(w[1], group, &M)) return bad("W " + shape_str(w) + " is too large");
    } else {
      M = w[0];
      int64_t wc;
      if (!mul_ok(w[1], group, &wc) || wc != C)
        return bad("W " + shape_str(w) + " with group " + std::to_string(group) + " does not match the " +
                   std::to_string(C) + " input channels");
      if (M % group) return bad("output channels " + std::to_string(M) + " are not divisible by group " + std::to_string(group));
    }
    if (a.has("kernel_shape") && a.get_ints("kernel_shape") != Shape(w.begin() + 2, w.end()))
      return bad("kernel_shape does not match W " + shape_str(w));
    Shape o = {x[0], M};
    for (size_t i = 0; i < sp; ++i) {
      int64_t e;
      if (!conv_extent(tr, x[2 + i], w[2 + i], st[i], dl[i], pd[i], pd[i + sp], opd[i], &e))
        return bad("spatial dim " + std::to_string(i) + " of X " + shape_str(x) + " with W " + shape_str(w) +
                   ", strides " + rules::ints_str(st) + ", dilations " + rules::ints_str(dl) + ", pads " +
                   rules::ints_str(pd) + (tr ? ", output_padding " + rules::ints_str(opd) : "") + " has no valid extent");
      o.push_back(e);
    }
    if (const Shape* b = input(kBiasInput))
      if (*b != Shape{M}) return bad("bias " + shape_str(*b) + " must be [" + std::to_string(M) + "]");
    *out = last ? channels_last_shape(o) : o;
    return Status::ok();
  }
  if (op == "Gemm") {
    if (x.size() != 2 || w.size() != 2) return bad("A " + shape_str(x) + " and B " + shape_str(w) + " must be 2-D");
    const bool ta = a.get_int("transA", 0) != 0, tb = a.get_int("transB", 0) != 0;
    const int64_t M = ta ? x[1] : x[0], K = ta ? x[0] : x[1], Kb = tb ? w[1] : w[0], N = tb ? w[0] : w[1];
    if (K != Kb) return bad("inner dims of A " + shape_str(x) + " and B " + shape_str(w) + " differ");
    if (const Shape* c = input(kBiasInput)) {
      const int64_t cm = c->size() == 2 ? (*c)[0] : 1, cn = c->empty() ? 1 : c->back();
      if (c->size() > 2 || (cm != 1 && cm != M) || (cn != 1 && cn != N))
        return bad("C " + shape_str(*c) + " does not broadcast to [" + std::to_string(M) + "," + std::to_string(N) + "]");
    }
    *out = {M, N};
    return Status::ok();
  }
  if (op == "MatMul") {
    Shape as = x, bs = w;
    if (as.empty() || bs.empty()) return bad("operands must have rank >= 1");
    const bool a1 = as.size() == 1, b1 = bs.size() == 1;
    if (a1) as.insert(as.begin(), 1);
    if (b1) bs.push_back(1);
    if (as.back() != bs[bs.size() - 2]) return bad("inner dims of " + shape_str(x) + " and " + shape_str(w) + " differ");
    Shape batch;
    const Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
    const size_t r = std::max(ab.size(), bb.size());
    batch.resize(r);
    for (size_t i = 0; i < r; ++i) {
      const int64_t da = i < r - ab.size() ? 1 : ab[i - (r - ab.size())];
      const int64_t db = i < r - bb.size() ? 1 : bb[i - (r - bb.size())];
      if (da != db && da != 1 && db != 1) return bad("batch dims of " + shape_str(x) + " and " + shape_str(w) + " do not broadcast");
      batch[i] = da == 1 ? db : da;
    }
    Shape o = batch;
    if (!a1) o.push_back(as[as.size() - 2]);
    if (!b1) o.push_back(bs.back());
    if (const Shape* b = input(kBiasInput)) {
      const Shape& bias = *b;
      const int64_t M = as[as.size() - 2], N = bs.back();
      for (size_t i = 0; i + 2 < bias.size(); ++i)
        if (bias[i] != 1) return bad("bias " + shape_str(bias) + " must broadcast to the last two output dims only");
      const int64_t bm = bias.size() >= 2 ? bias[bias.size() - 2] : 1, bn = bias.empty() ? 1 : bias.back();
      if ((bm != 1 && bm != M) || (bn != 1 && bn != N))
        return bad("bias " + shape_str(bias) + " does not broadcast to [" + std::to_string(M) + "," + std::to_string(N) + "]");
    }
    *out = o;
    return Status::ok();
  }
  return bad("not a linear op");
}

}  // namespace linear

namespace {

Status linear_rule(RuleContext& c) {
  const std::string& op = c.node().op;
  linear::Epilogue e;
  KILN_TRY(rules::fused_epilogue(c, &e));
  KILN_TRY(c.inputs(2, e.residual ? 4 : 3));
  if (e.residual && !c.has_input(linear::kResidualInput)) return c.fail("fused residual input 3 is missing");
  KILN_TRY(c.outputs(1, 1));
  KILN_TRY(c.dtype_in(0, {DType::kFloat32, DType::kFloat16}));
  if (op != "ConvTranspose") {
    int64_t tf32;  // --allow-tf32: the OpenCL tensor-core variants may round operands to TF32
    KILN_TRY(c.int_attr_in(linear::kAttrAllowTf32, 0, 0, 1, &tf32));
  }
  const DType dt = c.dtype(0);
  for (size_t i = 1; i < c.num_inputs(); ++i)
    if (c.has_input(i) && c.dtype(i) != dt)
      return c.fail("input " + std::to_string(i) + " is " + dtype_name(c.dtype(i)) + " but input 0 is " + dtype_name(dt));
  if (op == "Conv" || op == "ConvTranspose") {
    int64_t group;
    std::vector<int64_t> v;
    KILN_TRY(c.int_attr("group", 1, &group));
    if (op == "Conv") {
      int64_t channels_last;  // runtime/ops/channels_last.h
      KILN_TRY(c.int_attr_in(kAttrChannelsLast, 0, 0, 1, &channels_last));
    }
    for (const char* name : {"kernel_shape", "strides", "dilations", "pads"}) KILN_TRY(c.ints_attr(name, &v));
    if (op == "ConvTranspose") KILN_TRY(c.ints_attr("output_padding", &v));
  } else if (op == "Gemm") {
    int64_t t;
    float f;
    KILN_TRY(c.int_attr_in("transA", 0, 0, 1, &t));
    KILN_TRY(c.int_attr_in("transB", 0, 0, 1, &t));
    KILN_TRY(c.float_attr("alpha", 1.f, &f));
    KILN_TRY(c.float_attr("beta", 1.f, &f));
  }
  std::vector<const Shape*> in;
  for (size_t i = 0; i < c.num_inputs(); ++i) in.push_back(c.has_input(i) ? &c.shape(i) : nullptr);
  Shape out;
  std::string why;
  if (!linear::linear_output(op, c.node().attrs, in, &out, &why).is_ok()) return c.fail(why);
  if (e.residual && c.shape(linear::kResidualInput) != out)
    return c.fail("fused residual " + shape_str(c.shape(linear::kResidualInput)) + " must have the output's shape " +
                  shape_str(out));
  c.set_output(0, dt, out);
  return Status::ok();
}

}  // namespace

void register_linear_rules(RuleRegistry& r) {
  for (const char* op : {"Conv", "ConvTranspose", "Gemm", "MatMul"}) r.add(op, linear_rule);
}

}  // namespace kiln
