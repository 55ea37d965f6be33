// Index geometry shared by the CPU and OpenCL kernels of the normalization family: how a
// softmax/norm row, a reduction and a pooling window map onto flat memory. Header-only and
// backend-neutral so both backends agree by construction.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/attrs.h"
#include "runtime/core/shape.h"
#include "runtime/core/status.h"
#include "runtime/plan/plan.h"

namespace kiln::normgeo {

// A tensor seen as [outer, n, inner]: rows of n elements at stride `inner`.
struct Rows {
  int64_t outer = 1, n = 1, inner = 1;
};

// Softmax/LogSoftmax runtime attrs (axis, coerce_2d) on `shape`.
inline Rows softmax_rows(const Shape& shape, const Attributes& attrs) {
  Rows r;
  const int64_t axis = attrs.get_int("axis", 0);
  const bool coerce = attrs.get_int("coerce_2d", 0) != 0;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < axis) r.outer *= shape[d];
    else if (d == axis || coerce) r.n *= shape[d];
    else r.inner *= shape[d];
  }
  return r;
}

// Split of `shape` at `axis`: [prod(:axis), prod(axis:)] (LayerNormalization).
inline Rows split_at(const Shape& shape, int64_t axis) {
  Rows r;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) (d < axis ? r.outer : r.n) *= shape[d];
  return r;
}

// A reduction with adjacent dims of the same kind (reduced / kept) merged. dims[i] alternate
// between kept and reduced; size-1 dims are dropped (they change no offsets).
struct ReduceGeom {
  std::vector<int64_t> dims;
  std::vector<bool> reduced;
  std::vector<int64_t> in_strides;   // element strides of the merged dims in the input
  std::vector<int64_t> out_strides;  // 0 for reduced dims
  int64_t out_numel = 1;
  int64_t reduce_numel = 1;
};

inline ReduceGeom reduce_geom(const Shape& in, const std::vector<int64_t>& axes) {
  ReduceGeom g;
  for (size_t d = 0; d < in.size(); ++d) {
    bool red = false;
    for (int64_t a : axes) red |= a == static_cast<int64_t>(d);
    if (red) g.reduce_numel *= in[d];
    else g.out_numel *= in[d];
    if (in[d] == 1) continue;
    if (!g.dims.empty() && g.reduced.back() == red) {
      g.dims.back() *= in[d];
    } else {
      g.dims.push_back(in[d]);
      g.reduced.push_back(red);
    }
  }
  const size_t r = g.dims.size();
  g.in_strides.assign(r, 1);
  g.out_strides.assign(r, 0);
  int64_t is = 1, os = 1;
  for (size_t i = r; i-- > 0;) {
    g.in_strides[i] = is;
    is *= g.dims[i];
    if (!g.reduced[i]) {
      g.out_strides[i] = os;
      os *= g.dims[i];
    }
  }
  return g;
}

// Pooling window geometry, always in 3-D form (1-D and 2-D pools get leading unit dims).
struct PoolGeom {
  int64_t planes = 1;  // N * C
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1};
  int64_t kernel[3] = {1, 1, 1}, stride[3] = {1, 1, 1}, dil[3] = {1, 1, 1};
  int64_t pad_begin[3] = {0, 0, 0}, pad_end[3] = {0, 0, 0};
  int nsp = 0;  // real spatial dims
};

inline Status pool_geom(const Shape& x, const Shape& y, const Attributes& a, PoolGeom* g) {
  const int nsp = static_cast<int>(x.size()) - 2;
  const auto k = a.get_ints("kernel_shape"), s = a.get_ints("strides"), d = a.get_ints("dilations"),
             p = a.get_ints("pads");
  if (nsp < 1 || nsp > 3 || y.size() != x.size() || k.size() != static_cast<size_t>(nsp) ||
      s.size() != k.size() || d.size() != k.size() || p.size() != 2 * k.size())
    return invalid_plan("pooling attributes do not match input " + shape_str(x));
  g->nsp = nsp;
  g->planes = x[0] * x[1];
  const int off = 3 - nsp;
  for (int i = 0; i < nsp; ++i) {
    g->in[off + i] = x[2 + i];
    g->out[off + i] = y[2 + i];
    g->kernel[off + i] = k[i];
    g->stride[off + i] = s[i];
    g->dil[off + i] = d[i];
    g->pad_begin[off + i] = p[i];
    g->pad_end[off + i] = p[nsp + i];
  }
  return Status::ok();
}

// Which plan output slot holds ONNX output `i` of a node whose produced outputs are the set
// bits of `mask`: the runtime gets only produced outputs, in order, while constant folding
// passes every ONNX output slot (absent ones empty). -1: not produced.
inline int output_slot(size_t num_outputs, int64_t mask, int i) {
  if (!(mask >> i & 1)) return -1;
  int produced = 0;
  for (int b = 0; b < 63; ++b) produced += mask >> b & 1;
  if (static_cast<int>(num_outputs) != produced) return i < static_cast<int>(num_outputs) ? i : -1;
  int slot = 0;
  for (int b = 0; b < i; ++b) slot += mask >> b & 1;
  return slot;
}

}  // namespace kiln::normgeo
