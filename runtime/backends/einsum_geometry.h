// Einsum's label sizes and per-input label strides, from the runtime attributes
// (compiler/ops/einsum.cpp) and the inputs' shapes at launch; shared by both backends.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/attrs.h"
#include "runtime/core/shape.h"
#include "runtime/core/status.h"

namespace kiln::einsum {

struct Geom {
  int64_t labels = 0, out_labels = 0;
  std::vector<int64_t> size;                  // per label
  std::vector<std::vector<int64_t>> strides;  // per input, per label: element stride (0: absent or broadcast)
  int64_t out_numel = 1, sum_numel = 1;       // output elements; terms summed into each
};

inline Status make_geom(const Attributes& attrs, const std::vector<Shape>& inputs, const Shape& out, Geom* g) {
  g->labels = attrs.get_int("labels", 0);
  g->out_labels = attrs.get_int("out_labels", 0);
  const std::vector<int64_t> ranks = attrs.get_ints("in_ranks"), lab = attrs.get_ints("in_labels");
  if (g->labels < 0 || g->labels > 64 || g->out_labels < 0 || g->out_labels > g->labels || ranks.size() != inputs.size() ||
      static_cast<int64_t>(out.size()) != g->out_labels)
    return invalid_plan("Einsum: label attributes do not match the node");
  g->size.assign(static_cast<size_t>(g->labels), 1);
  g->strides.assign(inputs.size(), std::vector<int64_t>(static_cast<size_t>(g->labels), 0));
  for (int64_t l = 0; l < g->out_labels; ++l) g->size[l] = out[l];
  size_t k = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Shape& s = inputs[i];
    if (ranks[i] != static_cast<int64_t>(s.size()) || k + s.size() > lab.size())
      return invalid_plan("Einsum: input " + std::to_string(i) + " does not match its labels");
    int64_t stride = 1;
    for (size_t d = s.size(); d-- > 0;) {
      const int64_t l = lab[k + d];
      if (l < 0 || l >= g->labels) return invalid_plan("Einsum: label out of range");
      if (s[d] != 1) {
        if (g->size[l] != 1 && g->size[l] != s[d])
          return invalid_plan("Einsum: input " + std::to_string(i) + " dim " + std::to_string(d) + " does not match its label");
        g->size[l] = s[d];
        g->strides[i][l] += stride;  // a label repeated within one input walks its diagonal
      }
      stride *= s[d];
    }
    k += s.size();
  }
  if (k != lab.size()) return invalid_plan("Einsum: label attributes do not match the inputs");
  for (int64_t l = 0; l < g->labels; ++l) (l < g->out_labels ? g->out_numel : g->sum_numel) *= g->size[l];
  if (shape_numel(out) != g->out_numel) return invalid_plan("Einsum: output does not match its labels");
  return Status::ok();
}

}  // namespace kiln::einsum
