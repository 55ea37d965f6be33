// FP8 conversions as the ONNX float8 spec defines them (onnx/docs/docs/Float8.md, and the Cast
// operator's conversion table), for E4M3FN and E5M2:
//   - float32 -> float8 rounds to nearest, ties to even;
//   - saturate=true: values beyond the largest finite float8 (also +-Inf) become +-max
//     (448 for E4M3FN, 57344 for E5M2);
//   - saturate=false: those become NaN for E4M3FN (it has no Inf) and +-Inf for E5M2;
//   - NaN stays NaN. A value rounds up into overflow only when RNE would round past max
//     (464 and below stay 448 in E4M3FN; 61440 and below stay 57344 in E5M2).
// Checked against onnx 1.17's reference (onnx.helper.float32_to_float8e4m3/e5m2) on ~270k
// float32 values including every rounding midpoint: identical except where the reference
// departs from its own spec when not saturating: it maps E4M3FN |x| in [480, 496) to 448 and
// E5M2 |x| in (61440, 65536) to NaN; kiln gives NaN and Inf there (the spec's table, and what
// RNE followed by overflow means).
// The FNUZ variants (no negative zero, other bias) are not implemented here.
// kernels/float8.cl carries the same rules in OpenCL C; keep the two in step.
#pragma once
#include <cstdint>

#include "runtime/core/dtype.h"

namespace kiln {

uint8_t float_to_float8e4m3fn(float x, bool saturate);
uint8_t float_to_float8e5m2(float x, bool saturate);
float float8e4m3fn_to_float(uint8_t code);
float float8e5m2_to_float(uint8_t code);

// True for the two formats above (the ones kiln converts); false for the FNUZ variants.
inline bool float8_is_supported(DType t) {
  return t == DType::kFloat8E4M3FN || t == DType::kFloat8E5M2;
}
// Dispatch on `t`, which must satisfy float8_is_supported.
inline uint8_t float_to_float8(DType t, float x, bool saturate) {
  return t == DType::kFloat8E4M3FN ? float_to_float8e4m3fn(x, saturate) : float_to_float8e5m2(x, saturate);
}
inline float float8_to_float(DType t, uint8_t code) {
  return t == DType::kFloat8E4M3FN ? float8e4m3fn_to_float(code) : float8e5m2_to_float(code);
}
// The 256 decoded values of format `t` (a static table; decoding a tensor is one lookup per
// element).
const float* float8_decode_table(DType t);

}  // namespace kiln
