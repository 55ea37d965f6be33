#include "runtime/core/half.h"

#include <cmath>
#include <cstring>

namespace kiln {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400));
      u = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else {
    u = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return sign | (a > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (a >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: infinity
  if (a < 0x38800000u) {                        // below the smallest normal half: subnormal/zero
    // Scale so that the half subnormal unit (2^-24) is 1, and let float addition round to even.
    float v;
    std::memcpy(&v, &a, 4);
    v = v * 16777216.0f;                        // * 2^24
    return sign | static_cast<uint16_t>(std::nearbyint(v));
  }
  const uint32_t mant_odd = (a >> 13) & 1;
  const uint32_t r = a + 0xfff + mant_odd;  // round to nearest even at bit 13
  return sign | static_cast<uint16_t>(((r >> 13) - ((127 - 15) << 10)) & 0x7fff);
}

uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

}  // namespace kiln
