#include "runtime/backends/cpu/dnnl_common.h"

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "runtime/backends/cpu/fast_loops.h"

namespace kiln {
namespace dnnl_util {

dnnl::engine& engine() {
  // Leaked: primitives may still be released by static destructors after this one would run.
  static dnnl::engine* e = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *e;
}

std::string isa_name() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

bool int8_accumulates_exactly() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx2_vnni:
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx: return true;
    default: return false;
  }
}

dt dtype_of(DType t) {
  switch (t) {
    case DType::kFloat32: return dt::f32;
    case DType::kInt8: return dt::s8;
    case DType::kUInt8: return dt::u8;
    case DType::kInt32: return dt::s32;
    default: return dt::undef;
  }
}

dnnl::memory::dims dims_of(const Shape& s) {
  if (s.empty()) return {1};
  return dnnl::memory::dims(s.begin(), s.end());
}

dnnl::memory::desc plain_md(const Shape& shape, dt type) {
  const dnnl::memory::dims d = dims_of(shape);
  dnnl::memory::dims strides(d.size(), 1);
  for (int i = static_cast<int>(d.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * std::max<int64_t>(1, d[i + 1]);
  return dnnl::memory::desc(d, type, strides);
}

dnnl::memory::desc channels_last_md(const Shape& shape, dt type) {
  const dnnl::memory::dims d = dims_of(shape);
  switch (d.size()) {
    case 3: return dnnl::memory::desc(d, type, tag::nwc);
    case 4: return dnnl::memory::desc(d, type, tag::nhwc);
    case 5: return dnnl::memory::desc(d, type, tag::ndhwc);
    default: return plain_md(shape, type);
  }
}

dnnl::memory::desc layout_md(const Shape& shape, dt type, HostLayout layout) {
  if (layout == HostLayout::kChannelsLast && shape.size() == 4) return channels_last_md(shape, type);
  return plain_md(shape, type);
}

std::string md_str(const dnnl::memory::desc& md) {
  std::ostringstream o;
  const dnnl_memory_desc_t& d = md.data;
  o << "dims";
  for (int i = 0; i < d.ndims; ++i) o << (i ? "x" : " ") << d.dims[i];
  if (d.format_kind == dnnl_blocked) {
    o << " strides";
    for (int i = 0; i < d.ndims; ++i) o << (i ? "," : " ") << d.format_desc.blocking.strides[i];
    for (int i = 0; i < d.format_desc.blocking.inner_nblks; ++i)
      o << " blk" << d.format_desc.blocking.inner_blks[i] << "@" << d.format_desc.blocking.inner_idxs[i];
  }
  return o.str();
}

bool append_activation(dnnl::post_ops& po, const linear::Epilogue& e) {
  using A = linear::Activation;
  using alg = dnnl::algorithm;
  const float a = e.act_alpha, b = e.act_beta;
  switch (e.act) {
    case A::kNone: return true;
    case A::kRelu: po.append_eltwise(1.f, alg::eltwise_relu, 0.f, 0.f); return true;
    case A::kLeakyRelu: po.append_eltwise(1.f, alg::eltwise_relu, a, 0.f); return true;
    case A::kClip: po.append_eltwise(1.f, alg::eltwise_clip, a, b); return true;
    case A::kHardSigmoid:  // max(0, min(1, a x + b))
      po.append_eltwise(1.f, alg::eltwise_linear, a, b);
      po.append_eltwise(1.f, alg::eltwise_clip, 0.f, 1.f);
      return true;
    case A::kHardSwish: po.append_eltwise(1.f, alg::eltwise_hardswish, 0.f, 0.f); return true;
    case A::kSigmoid: po.append_eltwise(1.f, alg::eltwise_logistic, 0.f, 0.f); return true;
    case A::kTanh: po.append_eltwise(1.f, alg::eltwise_tanh, 0.f, 0.f); return true;
    case A::kElu: po.append_eltwise(1.f, alg::eltwise_elu, a, 0.f); return true;
    case A::kSelu:  // gamma * elu_alpha(x)
      po.append_eltwise(1.f, alg::eltwise_elu, a, 0.f);
      po.append_eltwise(1.f, alg::eltwise_linear, b, 0.f);
      return true;
    case A::kSoftplus: po.append_eltwise(1.f, alg::eltwise_soft_relu, 0.f, 0.f); return true;
    // oneDNN's erf is ~2.5e-7 off near erf = -1 (fast_gelu.h): absolute errors below 1e-6 in
    // GELU's negative tail, where the fused alternative (a second pass over the output) would
    // cost a read and a write of it.
    case A::kGelu: po.append_eltwise(1.f, alg::eltwise_gelu_erf, 0.f, 0.f); return true;
    case A::kGeluTanh: po.append_eltwise(1.f, alg::eltwise_gelu_tanh, 0.f, 0.f); return true;
  }
  return false;
}

namespace {
constexpr uint8_t kGuardPattern = 0xA5;
}

bool guard_scratch() {
  static const bool on = [] {
    const char* e = std::getenv("KILN_CPU_GUARD");
    return e && std::string(e) == "1";
  }();
  return on;
}

void* Buffer::get(size_t bytes) {
  if (bytes <= size_ && p_) return p_;
  std::free(p_);
  size_ = (std::max<size_t>(bytes, 64) + 63) / 64 * 64;
  const size_t guard = guard_scratch() ? kGuardBytes : 0;
  p_ = std::aligned_alloc(64, size_ + guard);
  if (!p_) {
    size_ = 0;
    throw std::bad_alloc();
  }
  std::memset(static_cast<uint8_t*>(p_) + size_, kGuardPattern, guard);
  return p_;
}

size_t Buffer::overrun() const {
  if (!p_ || !guard_scratch()) return 0;
  const uint8_t* g = static_cast<const uint8_t*>(p_) + size_;
  for (size_t i = kGuardBytes; i > 0; --i)
    if (g[i - 1] != kGuardPattern) return i;
  return 0;
}

}  // namespace dnnl_util

void BoundArgs::add(int arg, const dnnl::memory::desc& md) {
  mems_.emplace_back(md, dnnl_util::engine(), static_cast<void*>(nullptr));  // no buffer until set()
  args_.push_back({arg, mems_.back().get()});
}

bool BoundArgs::has(int arg) const {
  for (const dnnl_exec_arg_t& a : args_)
    if (a.arg == arg) return true;
  return false;
}

void BoundArgs::set(int arg, const void* data) {
  for (size_t i = 0; i < args_.size(); ++i)
    if (args_[i].arg == arg) {
      mems_[i].set_data_handle(const_cast<void*>(data));
      return;
    }
  throw dnnl::error(dnnl_invalid_arguments, "argument not bound");
}

void BoundArgs::execute(const dnnl::primitive& p, dnnl::stream& s) const {
  dnnl::error::wrap_c_api(dnnl_primitive_execute(p.get(), s.get(), static_cast<int>(args_.size()), args_.data()),
                          "could not execute a primitive");
}

void BoundReorder::init(const dnnl::memory::desc& from, const dnnl::memory::desc& to) {
  prim = dnnl::reorder(dnnl::reorder::primitive_desc(dnnl_util::engine(), from, dnnl_util::engine(), to));
  args.add(DNNL_ARG_FROM, from);
  args.add(DNNL_ARG_TO, to);
}

void run_signature(const FastRunArgs& a, std::vector<int64_t>* sig) {
  sig->clear();
  sig->push_back(a.ctx.threads);
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const bool cl = i < a.in_layout.size() && a.in_layout[i] == HostLayout::kChannelsLast;
    sig->push_back((a.inputs[i].data ? 1 : 0) | (cl ? 2 : 0) | static_cast<int64_t>(a.inputs[i].shape.size()) << 8);
    sig->insert(sig->end(), a.inputs[i].shape.begin(), a.inputs[i].shape.end());
  }
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    const bool cl = i < a.out_layout.size() && a.out_layout[i] == HostLayout::kChannelsLast;
    sig->push_back(-1 - ((cl ? 2 : 0) | static_cast<int64_t>(a.outputs[i].shape.size()) << 8));
    sig->insert(sig->end(), a.outputs[i].shape.begin(), a.outputs[i].shape.end());
  }
}

Status FastRunContext::check_guards() const {
  for (int slot = 0; slot < kSlots; ++slot)
    if (const size_t over = bufs_[slot].overrun())
      return internal_error("wrote up to " + std::to_string(over) + " bytes past scratch slot " + std::to_string(slot) +
                            " (" + std::to_string(bufs_[slot].size()) + " bytes)");
  return Status::ok();
}

void FastRunContext::copy(void* dst, const void* src, size_t bytes) const {
  for_each_chunk(threads, static_cast<int64_t>(bytes), int64_t{1} << 20, [&](int64_t b, int64_t len) {
    std::memcpy(static_cast<uint8_t*>(dst) + b, static_cast<const uint8_t*>(src) + b, static_cast<size_t>(len));
  });
}

}  // namespace kiln
