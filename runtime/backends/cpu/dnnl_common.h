// What the oneDNN-backed fast kernels share: the engine, a context's stream and scratch memory,
// memory descriptors of kiln tensors, fused-epilogue post-ops, and turning oneDNN's exceptions
// into Status.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/backends/cpu/fast_cpu.h"
#include "runtime/core/fault_injection.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/core/status.h"
#include "runtime/core/tensor.h"

namespace kiln {

namespace dnnl_util {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& engine();
// The ISA oneDNN dispatches to on this host ("avx512_core_amx", ...), for reports.
std::string isa_name();

// Whether oneDNN's int8 kernels sum u8 x s8 products exactly in int32 here: only with VNNI (or
// AMX). Without it (AVX2 as on AMD Zen 2/3, AVX-512 before Cascade Lake) they pair products in
// saturating int16 (vpmaddubsw) or halve the weights to 7 bits, and results leave the reference's.
bool int8_accumulates_exactly();

// oneDNN's type for a kiln dtype, or dt::undef.
dt dtype_of(DType t);
dnnl::memory::dims dims_of(const Shape& s);
// Row-major descriptor of a tensor of `shape` (rank 0 as [1]).
dnnl::memory::desc plain_md(const Shape& shape, dt type);
// Descriptor of a tensor in `layout` (channels-last for rank 4; every other rank is plain).
dnnl::memory::desc layout_md(const Shape& shape, dt type, HostLayout layout);
// The channels-last descriptor of a rank 3..5 shape (nwc, nhwc, ndhwc).
dnnl::memory::desc channels_last_md(const Shape& shape, dt type);
// "dims 1x64x56x56 strides ..." for error messages and tests.
std::string md_str(const dnnl::memory::desc& md);

// Appends kiln's activation (linear_epilogue.h) as eltwise post-ops; false when oneDNN has no
// exact counterpart.
bool append_activation(dnnl::post_ops& po, const linear::Epilogue& e);

// Runs `f`, turning a dnnl::error into a Status naming `what`.
template <typename F>
Status guard(const std::string& what, F&& f) {
  try {
    f();
  } catch (const dnnl::error& e) {
    return internal_error(what + ": oneDNN: " + e.what());
  }
  return Status::ok();
}

// Runs `f`, which makes a kernel's primitives at a new shape, before the kernel writes anything:
// a dnnl::error becomes kUnsupported naming `what` (FastCpu::run then leaves the node to the
// reference kernel: slower, never a failed run), except running out of memory. oneDNN 2.6 offers
// implementations it then cannot create on some CPUs (its VNNI 1x1 int8 convolution for grouped
// 1x1 convolutions of 24 channels a group, on AVX-512 without AMX), and asking it for the next
// implementation after such a failure crashed it, so the whole kernel gives way.
template <typename F>
Status creation_guard(const std::string& what, F&& f) {
  if (fault_now(FaultSite::kKernelCreate)) return unsupported(what + ": injected: no oneDNN primitive");
  try {
    f();
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_out_of_memory) return out_of_memory(what + ": oneDNN: " + e.what());
    return unsupported(what + ": oneDNN: " + e.what());
  }
  return Status::ok();
}

// A buffer aligned for AVX-512 that only grows. With KILN_CPU_GUARD=1 (a diagnostic for a
// kernel, ours or oneDNN's JIT code, that writes past what it asked for: AddressSanitizer does
// not see JIT stores) it carries kGuardBytes of a known pattern behind its end.
class Buffer {
 public:
  static constexpr size_t kGuardBytes = 4096;
  void* get(size_t bytes);
  // Bytes past the end that were overwritten (0: the guard is intact, or no guard).
  size_t overrun() const;
  size_t size() const { return size_; }
  ~Buffer() { std::free(p_); }

 private:
  void* p_ = nullptr;
  size_t size_ = 0;
};

// Whether KILN_CPU_GUARD=1 asked for guarded scratch buffers (read once).
bool guard_scratch();

}  // namespace dnnl_util

// A primitive's arguments as memory objects made once (when its cache entry is built); a run
// only points them at its data. Building an unordered_map of fresh memory objects per run cost
// a few microseconds a node, which small models (many small nodes) feel.
class BoundArgs {
 public:
  void add(int arg, const dnnl::memory::desc& md);
  bool has(int arg) const;
  // Points argument `arg` (added before) at `data`.
  void set(int arg, const void* data);
  void execute(const dnnl::primitive& p, dnnl::stream& s) const;

 private:
  std::vector<dnnl::memory> mems_;
  std::vector<dnnl_exec_arg_t> args_;
};

// A reorder between two descriptors with its source and destination bound once.
struct BoundReorder {
  dnnl::reorder prim;
  BoundArgs args;
  void init(const dnnl::memory::desc& from, const dnnl::memory::desc& to);
  void run(dnnl::stream& s, const void* from, void* to) {
    args.set(DNNL_ARG_FROM, from);
    args.set(DNNL_ARG_TO, to);
    args.execute(prim, s);
  }
};

// Per context: the stream primitives run on, this run's team size, and scratch memory that
// is valid until the next node runs (user-managed oneDNN scratchpads, reorder buffers).
class FastRunContext {
 public:
  FastRunContext() : stream_(dnnl_util::engine()) {}
  dnnl::stream& stream() { return stream_; }
  int threads = 1;
  // Scratch slot `slot` (0 .. kSlots - 1) of at least `bytes`.
  void* scratch(int slot, size_t bytes) { return bufs_[slot].get(bytes); }
  void* scratch_for(int slot, const dnnl::memory::desc& md) { return scratch(slot, md.get_size()); }
  // memcpy split over this node's team (a residual copied into a convolution's output before
  // its sum post-op is a full activation tensor).
  void copy(void* dst, const void* src, size_t bytes) const;
  // A memory object over scratch slot `slot` for `md`.
  dnnl::memory scratch_memory(int slot, const dnnl::memory::desc& md) {
    return dnnl::memory(md, dnnl_util::engine(), scratch(slot, md.get_size()));
  }
  // With KILN_CPU_GUARD=1: an error naming the scratch slot a kernel wrote past, else ok.
  Status check_guards() const;

 private:
  dnnl::stream stream_;
  static constexpr int kSlots = 8;
  dnnl_util::Buffer bufs_[kSlots];
};

// Scratch slots: 0 oneDNN's scratchpad; the rest for kernels' reorders.
constexpr int kScratchpadSlot = 0;

// The shapes, layouts and team size of a run as integers (what a kernel's primitives depend on).
void run_signature(const FastRunArgs& a, std::vector<int64_t>* sig);

// A per-kernel cache of what was built for one input shape, layout and team size. A run like
// the previous one (the usual case: static plans) finds its entry without a lookup.
template <typename Entry>
class ShapeCache {
 public:
  // `build` fills a new entry for the run's signature.
  template <typename Build>
  Status get(const FastRunArgs& a, Entry** out, Build&& build) {
    run_signature(a, &sig_);
    if (last_ && sig_ == last_sig_) {
      *out = last_;
      return Status::ok();
    }
    std::string key(reinterpret_cast<const char*>(sig_.data()), sig_.size() * sizeof(int64_t));
    auto it = map_.find(key);
    if (it == map_.end()) {
      auto e = std::make_unique<Entry>();
      KILN_TRY(build(*e));
      it = map_.emplace(std::move(key), std::move(e)).first;
    }
    last_ = it->second.get();
    last_sig_ = sig_;
    *out = last_;
    return Status::ok();
  }

 private:
  std::unordered_map<std::string, std::unique_ptr<Entry>> map_;
  std::vector<int64_t> sig_, last_sig_;
  Entry* last_ = nullptr;
};

}  // namespace kiln
