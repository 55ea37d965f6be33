#include "runtime/backends/cpu/dnnl_epilogue.h"

#include <cstring>

#include "runtime/backends/cpu/dnnl_packed.h"

namespace kiln {

using dnnl::memory;

bool is_reference_impl(const dnnl::primitive_desc& pd) {
  const char* s = pd.impl_info_str();
  return s && std::strncmp(s, "ref", 3) == 0;
}

dnnl::post_ops FusedEpilogue::post_ops(Mode m) const {
  dnnl::post_ops po;
  const bool before = ep_.residual == linear::kResidualBeforeActivation;
  auto residual = [&] {
    if (m == Mode::kSum) po.append_sum(1.f);
    else if (m == Mode::kBinary) po.append_binary(dnnl::algorithm::binary_add, dst_md_);
  };
  if (before) residual();
  // A separate residual before the activation leaves the activation to the binary primitive.
  if (!(m == Mode::kSeparate && before)) dnnl_util::append_activation(po, ep_);
  if (!before) residual();
  return po;
}

dnnl::primitive_desc FusedEpilogue::choose(const linear::Epilogue& ep, const memory::desc& dst_md, const MakePd& make) {
  ep_ = ep;
  dst_md_ = dst_md;
  if (ep.residual == linear::kResidualNone) {
    mode_ = Mode::kNone;
    return make(post_ops(Mode::kNone));
  }
  dnnl::primitive_desc first;
  for (Mode m : {Mode::kSum, Mode::kBinary, Mode::kSeparate}) {
    dnnl::primitive_desc pd;
    try {
      pd = make(post_ops(m));
    } catch (const dnnl::error&) {
      continue;
    }
    if (!first) {
      first = pd;
      mode_ = m;
    }
    if (!is_reference_impl(pd)) {
      mode_ = m;
      first = pd;
      break;
    }
  }
  if (!first) throw dnnl::error(dnnl_unimplemented, "no primitive for the fused residual");
  if (mode_ == Mode::kSeparate) {
    dnnl::post_ops po;
    if (ep.residual == linear::kResidualBeforeActivation) dnnl_util::append_activation(po, ep);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::binary::primitive_desc bpd(dnnl::binary::desc(dnnl::algorithm::binary_add, dst_md, dst_md, dst_md), attr,
                                     dnnl_util::engine());
    separate_scratch_ = bpd.scratchpad_desc();
    separate_ = dnnl::binary(bpd);
    for (int arg : {DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST}) separate_args_.add(arg, dst_md);
    separate_args_.add(DNNL_ARG_SCRATCHPAD, separate_scratch_);
  }
  return first;
}

void FusedEpilogue::set_residual_md(const memory::desc& user_md, BoundArgs* args) {
  user_md_ = user_md;
  reorder_ = user_md != dst_md_;
  if (reorder_ && mode_ != Mode::kNone) reorder_r_.init(user_md, dst_md_);
  if (mode_ == Mode::kBinary) {
    const int idx = ep_.residual == linear::kResidualBeforeActivation ? 0 : activation_post_ops(ep_);
    args->add(DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1, dst_md_);
  }
}

void FusedEpilogue::before(FastRunContext& c, const void* r, void* dst, BoundArgs& args) {
  if (mode_ == Mode::kNone) return;
  if (mode_ == Mode::kSum) {
    // dst starts as R: the primitive adds its result to it.
    if (reorder_) reorder_r_.run(c.stream(), r, dst);
    else if (dst != r) c.copy(dst, r, dst_md_.get_size());
    return;
  }
  res_ = r;
  if (reorder_) {
    void* tmp = c.scratch_for(3, dst_md_);
    reorder_r_.run(c.stream(), r, tmp);
    res_ = tmp;
  }
  if (mode_ == Mode::kBinary) {
    const int idx = ep_.residual == linear::kResidualBeforeActivation ? 0 : activation_post_ops(ep_);
    args.set(DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1, res_);
  }
}

void FusedEpilogue::after(FastRunContext& c, void* dst) {
  if (mode_ != Mode::kSeparate) return;
  separate_args_.set(DNNL_ARG_SRC_0, dst);
  separate_args_.set(DNNL_ARG_SRC_1, res_);
  separate_args_.set(DNNL_ARG_DST, dst);
  separate_args_.set(DNNL_ARG_SCRATCHPAD, c.scratch_for(4, separate_scratch_));
  separate_args_.execute(separate_, c.stream());
}

}  // namespace kiln
