// Vectorized per-tensor dequantization (y = (float(x) - zp) * s, the reference kernel's float
// operations), shared by DequantizeLinear on the fast path (fast_quantize.cpp) and the integer
// kernels' residual (fast_epilogue_loop.cpp).
#pragma once
#include <cstdint>

namespace kiln {

void dequantize_s8(const int8_t* x, int64_t n, float s, float zp, float* y);
void dequantize_u8(const uint8_t* x, int64_t n, float s, float zp, float* y);

}  // namespace kiln
