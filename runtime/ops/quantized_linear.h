// Where the quantized linear ops keep the operands kiln's fusion adds (compiler/passes/
// fuse_quantized.cpp writes them; the cpu and OpenCL kernels and the plan rules read them): the
// one statement of that layout, shared by the compiler and every backend.
//
// QLinearConv / QLinearMatMul, inputs past the 8 ONNX ones: 8 bias (int32; QLinearMatMul too,
// per column when the attribute `bias_columns` is 1), 9 residual R of the output's shape (float32,
// float16, or int8/uint8 read as (R - input 11) * input 10, a scalar scale and zero point).
// Fp8Conv / Fp8MatMul (kiln's own): 0 x, 1 x_scale, 2 w, 3 w_scale, 4 y_scale, 5 bias (float32),
// 6 residual (float32, float16 or FP8), 7 the FP8 residual's scale.
#pragma once
#include <cstddef>

namespace kiln {

constexpr size_t kQBiasInput = 8;
constexpr size_t kQResidualInput = 9;
constexpr size_t kQResidualScaleInput = 10;
constexpr size_t kQResidualZeroPointInput = 11;
constexpr const char* kAttrBiasColumns = "bias_columns";

constexpr int kFp8YScaleInput = 4, kFp8BiasInput = 5, kFp8ResidualInput = 6, kFp8ResidualScaleInput = 7;

}  // namespace kiln
