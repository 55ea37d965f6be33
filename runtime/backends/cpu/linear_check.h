// Shape checks the CPU and OpenCL kernels of Conv, ConvTranspose, Gemm and MatMul run before
// touching memory: a plan is trusted only as far as verify_plan() checked it, and a damaged or
// hand-edited plan must fail with a Status, never read out of bounds.
#pragma once
#include <string>
#include <vector>

#include "runtime/backends/cpu/linear_epilogue.h"
#include "runtime/core/attrs.h"
#include "runtime/core/shape.h"

namespace kiln::linear {

// `in[i]` is the shape of input i (nullptr: absent), `out` the output's.
inline Status check_linear_shapes(const std::string& op, const std::string& node, const Attributes& a,
                                  const std::vector<const Shape*>& in, const Shape& out) {
  auto bad = [&](const std::string& what) {
    return invalid_plan("node '" + node + "' (" + op + "): inconsistent plan: " + what);
  };
  auto input = [&](size_t i) -> const Shape* { return i < in.size() ? in[i] : nullptr; };
  if (!input(0) || !input(1)) return bad("missing operand");
  const Shape& x = *in[0];
  const Shape& w = *in[1];
  Epilogue e;
  KILN_TRY(read_epilogue(a, &e).with_context("node '" + node + "'"));
  if (e.residual && (!input(kResidualInput) || *input(kResidualInput) != out)) return bad("residual shape");
  if (op == "Conv" || op == "ConvTranspose") {
    const bool tr = op == "ConvTranspose";
    if (x.size() < 3 || w.size() != x.size() || out.size() != x.size() || out[0] != x[0]) return bad("ranks");
    const size_t sp = x.size() - 2;
    const int64_t group = a.get_int("group", 1);
    const auto st = a.get_ints("strides", std::vector<int64_t>(sp, 1));
    const auto dl = a.get_ints("dilations", std::vector<int64_t>(sp, 1));
    const auto pd = a.get_ints("pads", std::vector<int64_t>(2 * sp, 0));
    const auto op_ = a.get_ints("output_padding", std::vector<int64_t>(sp, 0));
    if (group < 1 || st.size() != sp || dl.size() != sp || pd.size() != 2 * sp || op_.size() != sp)
      return bad("attributes");
    const int64_t C = x[1], M = out[1];
    if (C % group || M % group) return bad("group");
    if (tr ? (w[0] != C || w[1] * group != M) : (w[0] != M || w[1] * group != C)) return bad("weight shape");
    if (input(2) && *input(2) != Shape{M}) return bad("bias shape");
    for (size_t i = 0; i < sp; ++i) {
      if (st[i] < 1 || dl[i] < 1 || w[2 + i] < 1) return bad("attributes");
      const int64_t dk = (w[2 + i] - 1) * dl[i] + 1;
      const int64_t want = tr ? st[i] * (x[2 + i] - 1) + op_[i] + dk - pd[i] - pd[i + sp]
                              : (x[2 + i] + pd[i] + pd[i + sp] - dk) / st[i] + 1;
      // ConvTranspose may carry a negative end pad (an output_shape beyond the taps).
      if (out[2 + i] != want || pd[i] < 0 || (!tr && pd[i + sp] < 0)) return bad("output shape");
    }
    return Status::ok();
  }
  if (op == "Gemm") {
    if (x.size() != 2 || w.size() != 2 || out.size() != 2) return bad("ranks");
    const bool ta = a.get_int("transA", 0) != 0, tb = a.get_int("transB", 0) != 0;
    const int64_t M = ta ? x[1] : x[0], K = ta ? x[0] : x[1], Kb = tb ? w[1] : w[0], N = tb ? w[0] : w[1];
    if (K != Kb || out != Shape{M, N}) return bad("matrix shapes");
    if (const Shape* c = input(2)) {
      const int64_t cm = c->size() == 2 ? (*c)[0] : 1, cn = c->empty() ? 1 : c->back();
      if (c->size() > 2 || (cm != 1 && cm != M) || (cn != 1 && cn != N)) return bad("C shape");
    }
    return Status::ok();
  }
  if (op == "MatMul") {
    Shape as = x, bs = w;
    if (as.empty() || bs.empty()) return bad("ranks");
    const bool a1 = as.size() == 1, b1 = bs.size() == 1;
    if (a1) as.insert(as.begin(), 1);
    if (b1) bs.push_back(1);
    if (as.back() != bs[bs.size() - 2]) return bad("inner dims");
    Shape batch;
    if (!broadcast_shapes(Shape(as.begin(), as.end() - 2), Shape(bs.begin(), bs.end() - 2), &batch).is_ok())
      return bad("batch dims");
    Shape want = batch;
    if (!a1) want.push_back(as[as.size() - 2]);
    if (!b1) want.push_back(bs.back());
    if (want != out) return bad("output shape");
    if (const Shape* b = input(2)) {
      const Shape& bias = *b;
      const int64_t M = as[as.size() - 2], N = bs.back();
      for (size_t i = 0; i + 2 < bias.size(); ++i)
        if (bias[i] != 1) return bad("bias shape");
      const int64_t bm = bias.size() >= 2 ? bias[bias.size() - 2] : 1, bn = bias.empty() ? 1 : bias.back();
      if ((bm != 1 && bm != M) || (bn != 1 && bn != N)) return bad("bias shape");
    }
    return Status::ok();
  }
  return bad("unknown op");
}

}  // namespace kiln::linear
