// The integer kernels' epilogue when oneDNN cannot fuse the residual (dnnl_qlinear.cpp's kLoop):
// y = out(act(r (+) residual)) over a range of elements, with r the primitive's float result,
// the residual float32 or (u)int8 (dequantized by its scale and zero point) and out a float
// store or a requantization. Vectorized in chunks (residual widened to float first), with the
// reference's float operations, so the result is the reference kernel's bit for bit.
#pragma once
#include <cstdint>

#include "runtime/core/tensor.h"
#include "runtime/ops/linear_epilogue.h"

namespace kiln {

struct LoopEpilogue {
  linear::Epilogue ep;
  DType res_type = DType::kFloat32;
  float res_zp = 0.f, res_scale = 1.f;
  DType out_type = DType::kFloat32;  // float32, int8 or uint8
  float sy = 1.f, yzp = 0.f;         // the output's quantization (integer outputs)
};

// Elements [b, b + n) of y from r and res.
void loop_epilogue_range(const LoopEpilogue& e, const float* r, const void* res, void* y, int64_t b, int64_t n);

}  // namespace kiln
