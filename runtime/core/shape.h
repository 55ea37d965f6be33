// Static tensor shapes. kiln plans are fully shaped at build time, so a Shape is plain dims.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/status.h"

namespace kiln {

using Shape = std::vector<int64_t>;

inline int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Row-major (C order) element strides.
inline std::vector<int64_t> shape_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

// "1x3x224x224"; "scalar" for rank 0.
std::string shape_str(const Shape& s);

// Parses "1x3x224x224" (also "1,3,224,224"); "scalar" or "" for rank 0 (--shapes values).
Status parse_dims(const std::string& text, Shape* out);

// Numpy/ONNX multidirectional broadcasting of two shapes.
Status broadcast_shapes(const Shape& a, const Shape& b, Shape* out);

// Strides of `in` viewed at the broadcast shape `out` (0 where `in` broadcasts), length out.size().
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// Steps a row-major multi-index over the first `count` dims of `dims` (the last one fastest),
// wrapping to zeros after the last index.
inline void advance_index(std::vector<int64_t>& idx, const std::vector<int64_t>& dims, size_t count) {
  for (size_t d = count; d-- > 0;) {
    if (++idx[d] < dims[d]) return;
    idx[d] = 0;
  }
}

// Normalizes a possibly negative axis into [0, rank); error names the axis and rank.
Status normalize_axis(int64_t axis, int64_t rank, int64_t* out);

}  // namespace kiln
