// The shape check the CPU and OpenCL kernels of Conv, ConvTranspose, Gemm and MatMul run before
// touching memory: the op rule's own shape derivation (runtime/ops/rules/linear_rules.h), so a
// kernel and the plan verifier cannot disagree on what a consistent node is.
#pragma once
#include <string>
#include <vector>

#include "runtime/ops/linear_epilogue.h"
#include "runtime/ops/rules/linear_rules.h"

namespace kiln::linear {

// `in[i]` is the shape of input i (nullptr: absent), `out` the output's.
inline Status check_linear_shapes(const std::string& op, const std::string& node, const Attributes& a,
                                  const std::vector<const Shape*>& in, const Shape& out) {
  auto bad = [&](const std::string& what) {
    return invalid_plan("node '" + node + "' (" + op + "): inconsistent plan: " + what);
  };
  Epilogue e;
  KILN_TRY(read_epilogue(a, &e).with_context("node '" + node + "'"));
  if (e.residual && (in.size() <= kResidualInput || !in[kResidualInput] || *in[kResidualInput] != out))
    return bad("residual shape");
  Shape want;
  std::string why;
  if (!linear_output(op, a, in, &want, &why).is_ok()) return bad(why);
  if (want != out) return bad("output " + shape_str(out) + ", expected " + shape_str(want));
  return Status::ok();
}

}  // namespace kiln::linear
