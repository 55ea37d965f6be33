// Sets a kernel's arguments and enqueues it, checking every call. Usage:
//   KILN_TRY(ClLaunch(cl, kernel, "transpose").mem(in).mem(out).arg(n).run1d(n));
#pragma once
#include <string>
#include <vector>

#include "runtime/device/cl_runtime.h"

namespace kiln {

class ClLaunch {
 public:
  ClLaunch(ClRuntime& cl, cl_kernel k, std::string name) : cl_(cl), k_(k), name_(std::move(name)) {}

  template <typename T>
  ClLaunch& arg(const T& v) {
    set(sizeof(T), &v);
    return *this;
  }
  ClLaunch& mem(cl_mem m) { return arg(m); }
  // __local scratch of `bytes`.
  ClLaunch& local(size_t bytes) {
    set(bytes, nullptr);
    return *this;
  }

  // One work-item per element; n == 0 enqueues nothing.
  Status run1d(size_t n, size_t local = 0);
  Status run(cl_uint dims, const size_t* global, const size_t* local);

 private:
  void set(size_t size, const void* p);
  ClRuntime& cl_;
  cl_kernel k_;
  std::string name_;
  cl_uint index_ = 0;
  Status status_;
};

// Packs a shape or strides into a fixed-size int array argument (kernels index up to kMaxDims).
constexpr int kClMaxDims = 8;
struct ClDims {
  cl_int v[kClMaxDims] = {0};
};
ClDims cl_dims(const std::vector<int64_t>& d);

}  // namespace kiln
