#include "runtime/core/float8.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace kiln {
namespace {

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// Rounds |x| (float32 bits without the sign, finite, non-zero) to a float8 with `mbits`
// mantissa bits and exponent bias `bias`, nearest-even, and returns the unsigned code as if the
// exponent field were unbounded above: codes past the format's largest finite value mean
// overflow and are handled by the caller.
uint32_t round_to_code(uint32_t abs_bits, int mbits, int bias) {
  const int e = static_cast<int>(abs_bits >> 23) - 127;  // unbiased; -127 for float32 subnormals
  if (e == -127) return 0;  // float32 subnormals are far below every float8 subnormal
  const uint32_t m = (abs_bits & 0x7FFFFFu) | 0x800000u;  // 24-bit significand 1.f * 2^23
  const int emin = 1 - bias;                               // exponent of the smallest normal
  // Bits of m to drop: the mantissa difference, plus the denormal shift below emin.
  const int drop = 23 - mbits + (e < emin ? emin - e : 0);
  if (drop > 24) return 0;  // below half the smallest subnormal
  uint32_t q = m >> drop;
  const uint32_t rem = m & ((1u << drop) - 1u), half = 1u << (drop - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  if (e < emin) return q;  // subnormal; q == 1 << mbits is the smallest normal's code, as wanted
  // Normal: q holds 1.mmm (mbits + 1 bits), or 10.00 when rounding carried into the exponent.
  int be = e + bias;
  if (q >> (mbits + 1)) {
    q >>= 1;
    ++be;
  }
  return (static_cast<uint32_t>(be) << mbits) | (q & ((1u << mbits) - 1u));
}

float decode(uint8_t code, int mbits, int bias) {
  const bool neg = code & 0x80;
  const int ef = (code & 0x7F) >> mbits;
  const int mf = code & ((1 << mbits) - 1);
  float v = ef == 0 ? std::ldexp(static_cast<float>(mf), 1 - bias - mbits)
                    : std::ldexp(static_cast<float>((1 << mbits) | mf), ef - bias - mbits);
  return neg ? -v : v;
}

struct Tables {
  float e4m3fn[256];
  float e5m2[256];
  Tables() {
    for (int c = 0; c < 256; ++c) {
      e4m3fn[c] = float8e4m3fn_to_float(static_cast<uint8_t>(c));
      e5m2[c] = float8e5m2_to_float(static_cast<uint8_t>(c));
    }
  }
};

}  // namespace

uint8_t float_to_float8e4m3fn(float x, bool saturate) {
  const uint32_t b = bits_of(x);
  const uint8_t sign = static_cast<uint8_t>((b >> 24) & 0x80u);
  const uint32_t abs_bits = b & 0x7FFFFFFFu;
  if (abs_bits > 0x7F800000u) return 0x7F | sign;                        // NaN
  if (abs_bits == 0x7F800000u) return sign | (saturate ? 0x7E : 0x7F);  // Inf: max or NaN
  if (abs_bits == 0) return sign;
  const uint32_t code = abs_bits >= 0x47800000u ? 0x100u : round_to_code(abs_bits, 3, 7);  // >= 2^16: overflow
  if (code > 0x7E) return sign | (saturate ? 0x7E : 0x7F);
  return sign | static_cast<uint8_t>(code);
}

uint8_t float_to_float8e5m2(float x, bool saturate) {
  const uint32_t b = bits_of(x);
  const uint8_t sign = static_cast<uint8_t>((b >> 24) & 0x80u);
  const uint32_t abs_bits = b & 0x7FFFFFFFu;
  if (abs_bits > 0x7F800000u) return 0x7F | sign;                        // NaN
  if (abs_bits == 0x7F800000u) return sign | (saturate ? 0x7B : 0x7C);  // Inf: max or Inf
  if (abs_bits == 0) return sign;
  const uint32_t code = abs_bits >= 0x48000000u ? 0x100u : round_to_code(abs_bits, 2, 15);  // >= 2^17: overflow
  if (code > 0x7B) return sign | (saturate ? 0x7B : 0x7C);
  return sign | static_cast<uint8_t>(code);
}

float float8e4m3fn_to_float(uint8_t code) {
  if ((code & 0x7F) == 0x7F) return std::numeric_limits<float>::quiet_NaN();
  return decode(code, 3, 7);
}

float float8e5m2_to_float(uint8_t code) {
  const int mag = code & 0x7F;
  if (mag > 0x7C) return std::numeric_limits<float>::quiet_NaN();
  if (mag == 0x7C) return (code & 0x80) ? -std::numeric_limits<float>::infinity()
                                        : std::numeric_limits<float>::infinity();
  return decode(code, 2, 15);
}

const float* float8_decode_table(DType t) {
  static const Tables tables;
  return t == DType::kFloat8E4M3FN ? tables.e4m3fn : tables.e5m2;
}

}  // namespace kiln
