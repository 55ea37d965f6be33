#include "runtime/backends/quantize_fp8_geometry.h"

#include "runtime/ops/channels_last.h"

namespace kiln {
namespace {

// The output shape the geometry implies (a kernel must not write past a mis-sized output).
Status check_output(const std::string& where, bool conv, const Shape& x, const Shape& w, const PlanNode& node,
                    const QGemm& g, const Shape& out) {
  bool ok;
  if (conv) {
    const int64_t group = g.groups;
    ok = group >= 1 && w[0] % group == 0 && w[1] * group == x[1] && out.size() == x.size() && out[0] == x[0] &&
         out[1] == w[0];
    const std::vector<int64_t> pads = node.attrs.get_ints("pads");
    for (size_t d = 0; ok && d < g.ks.size(); ++d) {
      const int64_t ext = (g.ks[d] - 1) * g.dil[d] + 1;
      const int64_t span = x[2 + d] + pads[d] + pads[g.ks.size() + d] - ext;
      ok = g.ks[d] == w[2 + d] && g.strides[d] >= 1 && g.dil[d] >= 1 && pads[d] >= 0 && span >= 0 &&
           out[2 + d] == span / g.strides[d] + 1;
    }
  } else {
    ok = shape_numel(out) == g.batches * g.M * g.N && !out.empty() && out.back() == g.N;
  }
  if (!ok)
    return invalid_plan(where + ": output " + shape_str(out) + " does not match x " + shape_str(x) + " and w " +
                        shape_str(w) + " with its attributes");
  return Status::ok();
}

}  // namespace

int fp8_kind(DType t) {
  switch (t) {
    case DType::kFloat32: return 0;
    case DType::kFloat8E4M3FN: return 1;
    case DType::kFloat8E5M2: return 2;
    default: return -1;
  }
}

int fp8_out_kind(DType t) { return t == DType::kFloat16 ? kFp8Half : fp8_kind(t); }

Status fp8_linear_setup(const PlanNode& node, const std::vector<Fp8Operand>& in, const Fp8Operand& out,
                        Fp8Linear* f) {
  *f = Fp8Linear();
  const std::string where = node.op + " '" + node.name + "'";
  f->conv = node.op == "Fp8Conv";
  if (in.size() < 5) return invalid_plan(where + ": expected 5 or 6 inputs");
  for (int i = 0; i < 5; ++i)
    if (in[i].dtype == DType::kUndefined) return invalid_plan(where + ": input " + std::to_string(i) + " is missing");
  const int x = 0, w = 2;
  f->a = f->conv ? w : x;
  f->b = f->conv ? x : w;
  f->sa = f->a + 1;
  f->sb = f->b + 1;
  f->ka = fp8_kind(in[f->a].dtype);
  f->kb = fp8_kind(in[f->b].dtype);
  f->ky = fp8_out_kind(out.dtype);
  if (fp8_kind(in[x].dtype) < 0 || fp8_kind(in[w].dtype) < 1 || f->ky < 0)
    return unsupported(where + ": dtypes x " + dtype_name(in[x].dtype) + ", w " + dtype_name(in[w].dtype) + ", y " +
                       dtype_name(out.dtype) + "; expected float8e4m3fn/float8e5m2 weights and float8 or float32 "
                       "activations");
  for (int i : {1, 3, Fp8Linear::kYScale})
    if (in[i].dtype != DType::kFloat32) return invalid_plan(where + ": scale input " + std::to_string(i) + " is not float32");
  const Shape& ws = in[w].shape;
  if (f->conv ? (in[x].shape.size() < 3 || ws.size() != in[x].shape.size()) : (ws.size() != 2 || in[x].shape.empty()))
    return invalid_plan(where + ": operand shapes x " + shape_str(in[x].shape) + ", w " + shape_str(ws) + " do not fit");
  if (!f->conv && in[x].shape.back() != ws[0])
    return invalid_plan(where + ": inner dims of a " + shape_str(in[x].shape) + " and b " + shape_str(ws) + " differ");
  KILN_TRY(qgemm_geometry(node, in[f->a].shape, in[f->b].shape, {}, {}, out.shape, &f->g));
  // Channels-last (runtime/ops/channels_last.h): checked in ONNX's order.
  auto onnx_order = [&](const Shape& s) { return f->g.channels_last ? channels_first_shape(s) : s; };
  KILN_TRY(check_output(where, f->conv, onnx_order(in[x].shape), onnx_order(ws), node, f->g, onnx_order(out.shape)));
  // Weight-side vectors have one value per output channel (conv rows) or column (matmul).
  const int64_t channels = f->conv ? ws[0] : ws[1];
  auto check_len = [&](int i, bool may_be_vector, const char* what, bool* is_vec) -> Status {
    const int64_t n = shape_numel(in[i].shape);
    *is_vec = n != 1;
    if (n == 1 || (may_be_vector && n == channels)) return Status::ok();
    return invalid_plan(where + ": " + what + " has " + std::to_string(n) + " elements, expected 1" +
                        (may_be_vector ? " or " + std::to_string(channels) : std::string()));
  };
  bool y_vec;
  KILN_TRY(check_len(f->sa, f->conv, f->conv ? "w_scale" : "a_scale", &f->sa_vec));
  KILN_TRY(check_len(f->sb, !f->conv, f->conv ? "x_scale" : "b_scale", &f->sb_vec));
  KILN_TRY(check_len(Fp8Linear::kYScale, false, "y_scale", &y_vec));
  if (in.size() > Fp8Linear::kBias && in[Fp8Linear::kBias].dtype != DType::kUndefined) {
    if (in[Fp8Linear::kBias].dtype != DType::kFloat32 || shape_numel(in[Fp8Linear::kBias].shape) != channels)
      return invalid_plan(where + ": bias must be float32 with " + std::to_string(channels) + " elements");
    f->has_bias = true;
  }
  f->bias_per_row = f->conv;
  f->saturate = node.attrs.get_int("saturate", 1) != 0;
  KILN_TRY_CTX(linear::read_epilogue(node.attrs, &f->ep), where);
  if (f->ep.residual != linear::kResidualNone) {
    const int r = Fp8Linear::kResidual, rs = Fp8Linear::kResidualScale;
    if (in.size() <= static_cast<size_t>(r) || in[r].dtype == DType::kUndefined)
      return invalid_plan(where + ": fused residual input is missing");
    if (in[r].shape != out.shape) return invalid_plan(where + ": residual shape differs from the output's");
    f->kr = fp8_out_kind(in[r].dtype);
    if (f->kr < 0) return invalid_plan(where + ": residual must be float32, float16, float8e4m3fn or float8e5m2");
    if (f->kr > 0 && f->kr != kFp8Half && (in.size() <= static_cast<size_t>(rs) || in[rs].dtype != DType::kFloat32 ||
                      shape_numel(in[rs].shape) != 1))
      return invalid_plan(where + ": an FP8 residual needs its float32 scalar scale (input 7)");
  }
  return Status::ok();
}

}  // namespace kiln
