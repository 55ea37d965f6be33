// Convolution geometry as oneDNN sees it, shared by the float (dnnl_conv.cpp) and integer
// (dnnl_qlinear.cpp) convolutions.
#pragma once
#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/plan/plan.h"

namespace kiln::dnnl_conv {

using dnnl::memory;
using dnnl_util::dt;

struct ConvGeom {
  memory::dims strides, dil, pad_l, pad_r;
  int64_t groups = 1;
};

// Geometry of `node` at input shape x, weights w; false when oneDNN cannot express it.
inline bool conv_geom(const PlanNode& node, const Shape& x, const Shape& w, bool transpose, ConvGeom* g) {
  const size_t sp = x.size() - 2;
  const Attributes& a = node.attrs;
  g->groups = a.get_int("group", 1);
  const auto st = a.get_ints("strides", std::vector<int64_t>(sp, 1));
  const auto dl = a.get_ints("dilations", std::vector<int64_t>(sp, 1));
  const auto pd = a.get_ints("pads", std::vector<int64_t>(2 * sp, 0));
  const auto op = a.get_ints("output_padding", std::vector<int64_t>(sp, 0));
  if (st.size() != sp || dl.size() != sp || pd.size() != 2 * sp || op.size() != sp) return false;
  g->strides.assign(st.begin(), st.end());
  g->dil.clear();
  g->pad_l.clear();
  g->pad_r.clear();
  for (size_t i = 0; i < sp; ++i) {
    g->dil.push_back(dl[i] - 1);  // oneDNN counts the gaps
    g->pad_l.push_back(pd[i]);
    // ConvTranspose's output_padding extends the end: oneDNN's end padding shrinks by it.
    g->pad_r.push_back(transpose ? pd[sp + i] - op[i] : pd[sp + i]);
    if (g->pad_l.back() < 0 || g->pad_r.back() < 0) return false;
  }
  (void)w;
  return true;
}

// The ONNX weights as oneDNN sees them: Conv [M, C/g, k...] is oihw (goihw with groups);
// ConvTranspose [C, M/g, k...] holds, per group, i-major blocks: giohw.
inline memory::desc onnx_weights_md(const Shape& w, int64_t groups, bool transpose, dt type = dt::f32) {
  const size_t sp = w.size() - 2;
  int64_t ksz = 1;
  for (size_t i = 0; i < sp; ++i) ksz *= w[2 + i];
  memory::dims dims, strides;
  const int64_t o = transpose ? w[1] * groups : w[0], i = transpose ? w[0] : w[1] * groups;
  const int64_t og = o / groups, ig = i / groups;
  if (groups > 1) {
    dims = {groups, og, ig};
    strides = transpose ? memory::dims{ig * og * ksz, ksz, og * ksz} : memory::dims{og * ig * ksz, ig * ksz, ksz};
  } else {
    dims = {o, i};
    strides = transpose ? memory::dims{ksz, o * ksz} : memory::dims{i * ksz, ksz};
  }
  int64_t s = ksz;
  for (size_t d = 0; d < sp; ++d) {
    s /= w[2 + d];
    dims.push_back(w[2 + d]);
    strides.push_back(s);
  }
  return memory::desc(dims, type, strides);
}

}  // namespace kiln::dnnl_conv
