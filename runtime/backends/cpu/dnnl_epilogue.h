// kiln's fused epilogue (linear_epilogue.h: y = act(acc + bias [+ R]) [+ R]) on a oneDNN
// primitive. The activation becomes eltwise post-ops; the residual R joins in the first of
// these ways that oneDNN implements with an optimized kernel for the primitive at hand (its
// reference kernels are orders of magnitude slower, so a fused residual must not pull one in):
//   kSum       a sum post-op over dst prefilled with R (the usual conv + sum + relu);
//   kBinary    a binary-add post-op reading R;
//   kSeparate  the primitive without it, then one binary primitive dst = dst + R (+ act).
#pragma once
#include <functional>
#include <unordered_map>

#include "runtime/backends/cpu/dnnl_common.h"

namespace kiln {

class FusedEpilogue {
 public:
  enum class Mode { kNone, kSum, kBinary, kSeparate };
  using MakePd = std::function<dnnl::primitive_desc(const dnnl::post_ops&)>;

  // Builds the primitive descriptor through `make` with the epilogue's post-ops; `dst_md` is the
  // primitive's destination descriptor (the layout R must be read in). Throws dnnl::error.
  dnnl::primitive_desc choose(const linear::Epilogue& ep, const dnnl::memory::desc& dst_md, const MakePd& make);
  // The residual's descriptor as stored (once, after choose); adds the arguments the residual
  // post-op reads to the primitive's `args`.
  void set_residual_md(const dnnl::memory::desc& user_md, BoundArgs* args);
  Mode mode() const { return mode_; }

  // Around the primitive's execute: `dst` is its destination's data, `r` the residual's.
  void before(FastRunContext& c, const void* r, void* dst, BoundArgs& args);
  void after(FastRunContext& c, void* dst);

 private:
  dnnl::post_ops post_ops(Mode m) const;
  linear::Epilogue ep_;
  Mode mode_ = Mode::kNone;
  dnnl::memory::desc dst_md_, user_md_;
  bool reorder_ = false;
  BoundReorder reorder_r_;
  dnnl::binary separate_;
  BoundArgs separate_args_;
  dnnl::memory::desc separate_scratch_;
  const void* res_ = nullptr;  // this run's residual in dst_md_ layout
};

// Whether `pd` runs oneDNN's reference (unoptimized) implementation.
bool is_reference_impl(const dnnl::primitive_desc& pd);

}  // namespace kiln
