// Shape rule of the linear runtime ops (Conv, ConvTranspose, Gemm, MatMul), shared by the op
// rule (runtime/ops/rules/linear.cpp, run by the plan verifier and the compiler) and the
// kernels' own pre-launch check (runtime/backends/linear_check.h).
#pragma once
#include <string>
#include <vector>

#include "runtime/core/attrs.h"
#include "runtime/core/shape.h"
#include "runtime/core/status.h"

namespace kiln::linear {

// Output shape of `op` for input shapes `in` (nullptr: absent) and attributes `a`; on failure
// *why says what disagrees. Dims computed with checked arithmetic, geometry below 2^31.
Status linear_output(const std::string& op, const Attributes& a, const std::vector<const Shape*>& in, Shape* out,
                     std::string* why);

// One convolution axis' output extent (see linear.cpp); false when it has none.
bool conv_extent(bool transpose, int64_t x, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe, int64_t op,
                 int64_t* out);

}  // namespace kiln::linear
