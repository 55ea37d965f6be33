// Bounds the plan decoder and verifier put on untrusted plans.
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"

namespace kiln {

constexpr size_t kMaxRank = 16;
// No real tensor comes near this (256 TiB); anything above is corruption.
constexpr uint64_t kMaxTensorBytes = uint64_t{1} << 48;

// Byte size of a dense tensor, or false when it overflows or exceeds kMaxTensorBytes. Checked
// before anything is allocated, so corrupted dims cannot request absurd amounts of memory. The
// product of the non-zero dims is bounded too: an empty tensor [0, 2^62, 2^62] would otherwise
// pass, and kernels multiply partial dims (rows, strides) in int64.
inline bool checked_bytes(DType dt, const Shape& shape, uint64_t* out) {
  uint64_t bytes = dtype_size(dt), nonzero = dtype_size(dt);
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && nonzero > kMaxTensorBytes / static_cast<uint64_t>(d))) return false;
    if (d > 0) nonzero *= static_cast<uint64_t>(d);
    bytes *= static_cast<uint64_t>(d);
  }
  *out = bytes;
  return true;
}

}  // namespace kiln
