// Softmax over one contiguous row for the cpu fast path's fused kernels (fast_attention.cpp):
// vectorized, with a float exp within 2 ulp of libm's over the range softmax uses.
//
// Why not std::exp in a loop: a scalar libm call per element was most of the fused Attention
// kernel's non-GEMM time (4 heads x 64 x 64 scores take longer to exponentiate than to multiply).
#pragma once
#include <cstdint>

namespace kiln {

// row[j] = exp(row[j] - max) / sum_j exp(row[j] - max) for j < n. A row that is all -inf
// becomes NaN, as ONNX Softmax gives (exp(-inf - -inf) is NaN); a NaN anywhere makes the row NaN.
void softmax_row(float* row, int64_t n);

}  // namespace kiln
