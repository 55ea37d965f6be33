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
#include "runtime/backends/cpu/linear_epilogue.h"
#include "runtime/core/status.h"
#include "runtime/core/tensor.h"

namespace kiln {

namespace dnnl_util {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& engine();
// The ISA oneDNN dispatches to on this host ("avx512_core_amx", ...), for reports.
std::string isa_name();

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

// A buffer aligned for AVX-512 that only grows.
class Buffer {
 public:
  void* get(size_t bytes);
  ~Buffer() { std::free(p_); }

 private:
  void* p_ = nullptr;
  size_t size_ = 0;
};

}  // namespace dnnl_util

// Per context: the stream primitives run on, this run's team size, and scratch memory that
// is valid until the next node runs (user-managed oneDNN scratchpads, reorder buffers).
class FastRunContext {
 public:
  FastRunContext() : stream_(dnnl_util::engine()) {}
  dnnl::stream& stream() { return stream_; }
  int threads = 1;
  // Scratch slot `slot` (0..7) of at least `bytes`.
  void* scratch(int slot, size_t bytes) { return bufs_[slot].get(bytes); }
  // A memory object over scratch slot `slot` for `md`.
  dnnl::memory scratch_memory(int slot, const dnnl::memory::desc& md) {
    return dnnl::memory(md, dnnl_util::engine(), scratch(slot, md.get_size()));
  }

 private:
  dnnl::stream stream_;
  dnnl_util::Buffer bufs_[8];
};

// Scratch slots: 0 oneDNN's scratchpad; the rest for kernels' reorders.
constexpr int kScratchpadSlot = 0;

// A per-kernel cache of what was built for one input shape and team size.
template <typename Entry>
class ShapeCache {
 public:
  // `key` identifies the shapes/layouts/threads; `build` fills a new entry.
  template <typename Build>
  Status get(const std::string& key, Entry** out, Build&& build) {
    auto it = map_.find(key);
    if (it == map_.end()) {
      auto e = std::make_unique<Entry>();
      KILN_TRY(build(*e));
      it = map_.emplace(key, std::move(e)).first;
    }
    *out = it->second.get();
    return Status::ok();
  }

 private:
  std::unordered_map<std::string, std::unique_ptr<Entry>> map_;
};

// Key text of the shapes and layouts of a run, plus its team size.
std::string run_key(const FastRunArgs& a);

}  // namespace kiln
