// Operands and geometry of the FP8 linear ops, shared by the CPU and OpenCL backends so both read
// a node the same way. Canonical form (written by compiler/ops/quantize_fp8.cpp):
//   Fp8Conv   (x, x_scale, w, w_scale, y_scale[, B])  attrs kernel_shape, strides, dilations,
//             pads, group (as Conv), saturate
//   Fp8MatMul (a, a_scale, b, b_scale, y_scale[, bias])  a [.., M, K], b [K, N]; attr saturate
// x / a: float8e4m3fn, float8e5m2 or float32 (a weight-only FP8 layer); w / b: float8e4m3fn or
// float8e5m2; y: any of the three. Scales are float32: x/a and y per tensor, w per output
// channel [M] or b per column [N] (or per tensor). B / bias is float32 [M] / [N].
// Arithmetic (both backends, in this order, float32 without contraction):
//   acc = sum over k ascending of decode(w) * decode(x)    (the QGemm geometry of
//         runtime/backends/quantize_geometry.h: A = w / a rows, B = im2col(x) / b columns)
//   v   = acc * (s_row * s_col) + bias;  then kiln's fused epilogue (compiler/passes/
//         fuse_quantized.cpp; linear_epilogue.h attributes): v += R (residual mode 1),
//         v = act(v), v += R (mode 2), with R input 6 of the output's shape (float32, or FP8
//         decoded times the scalar scale at input 7);   y = cast(v / y_scale) with the ONNX float8 rule
//         (round to nearest even; saturate to +-max, or NaN / Inf when saturate = 0), or
//         y = v / y_scale for a float32 output.
#pragma once
#include <vector>

#include "runtime/backends/quantize_geometry.h"
#include "runtime/ops/linear_epilogue.h"

namespace kiln {

// 0 float32, 1 float8e4m3fn, 2 float8e5m2; -1 for every other dtype.
int fp8_kind(DType t);
// The output's and the float residual's kind: fp8_kind, or kFp8Half for float16 (the float
// output/residual of an FP8 kernel whose readers run in FP16, --fallback-precision fp16).
constexpr int kFp8Half = 3;
int fp8_out_kind(DType t);

struct Fp8Operand {
  DType dtype = DType::kUndefined;  // kUndefined: input left out
  Shape shape;
};

struct Fp8Linear {
  bool conv = false;
  QGemm g;
  int a = 0, b = 0, sa = 0, sb = 0;  // input index of the row side, column side and their scales
  static constexpr int kYScale = kFp8YScaleInput, kBias = kFp8BiasInput, kResidual = kFp8ResidualInput,
                       kResidualScale = kFp8ResidualScaleInput;
  bool sa_vec = false, sb_vec = false, has_bias = false, bias_per_row = false;
  int ka = 0, kb = 0, ky = 0;  // fp8_kind of A and B, fp8_out_kind of the output
  bool saturate = true;
  linear::Epilogue ep;  // fused activation / residual
  int kr = 0;           // fp8_out_kind of the residual
};

// Checks dtypes and the scale / bias shapes against the geometry (a plan is untrusted input);
// errors name the node.
Status fp8_linear_setup(const PlanNode& node, const std::vector<Fp8Operand>& inputs, const Fp8Operand& output,
                        Fp8Linear* f);

}  // namespace kiln
