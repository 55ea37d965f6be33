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

// Softmax down the columns [c0, c0 + width) of an [n, stride] matrix: for each such column j,
// y[k, j] = exp(x[k, j] - max_k x[., j]) / sum_k (...), vectorized across the columns (ONNX
// Softmax over an axis that is not the last, e.g. YOLOv8's DFL head: oneDNN 2.6 has only its
// reference kernel for that, 60x slower). x and y may be the same buffer. Columns holding a
// NaN or an infinite maximum get the exact formula, as softmax_row gives them.
void softmax_columns(const float* x, float* y, int64_t n, int64_t stride, int64_t c0, int64_t width);

}  // namespace kiln
