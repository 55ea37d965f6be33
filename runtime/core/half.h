// float16 and bfloat16 bit conversions (round to nearest even, NaN kept), shared by the
// kernels, constant folding and result comparison.
#pragma once
#include <cstdint>
#include <cstring>

namespace kiln {

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
inline float bf16_to_float(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t float_to_bf16(float f);

}  // namespace kiln
