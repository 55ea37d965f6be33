// Overflow-checked int64 arithmetic for every dim, offset and extent computed from values a plan
// file or a model supplies (strides of 2^62, pads of INT64_MAX, steps of INT64_MIN): each helper
// returns false instead of wrapping, so callers turn an impossible value into an error.
#pragma once
#include <cstdint>

#include "runtime/core/shape.h"

namespace kiln {

inline bool add_ok(int64_t a, int64_t b, int64_t* out) { return !__builtin_add_overflow(a, b, out); }
inline bool sub_ok(int64_t a, int64_t b, int64_t* out) { return !__builtin_sub_overflow(a, b, out); }
inline bool mul_ok(int64_t a, int64_t b, int64_t* out) { return !__builtin_mul_overflow(a, b, out); }

// Element count of `s`, false when a dim is negative or the product overflows.
inline bool numel_ok(const Shape& s, int64_t* out) {
  int64_t n = 1;
  for (int64_t d : s)
    if (d < 0 || !mul_ok(n, d, &n)) return false;
  *out = n;
  return true;
}

}  // namespace kiln
