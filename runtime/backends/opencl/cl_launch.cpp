#include "runtime/backends/opencl/cl_launch.h"

#include "runtime/core/fault_injection.h"

namespace kiln {

void ClLaunch::set(size_t size, const void* p) {
  if (!status_.is_ok()) return;
  cl_int err = clSetKernelArg(k_, index_, size, p);
  if (err != CL_SUCCESS)
    status_ = cl_status(err, "clSetKernelArg(" + name_ + ", arg " + std::to_string(index_) + ")");
  ++index_;
}

Status ClLaunch::run1d(size_t n, size_t local) {
  if (n == 0) return status_;
  size_t g = local ? ClRuntime::round_up(n, local) : n;
  return run(1, &g, local ? &local : nullptr);
}

Status ClLaunch::run(cl_uint dims, const size_t* global, const size_t* local) {
  KILN_TRY(status_);
  for (cl_uint i = 0; i < dims; ++i)
    if (global[i] == 0) return Status::ok();
  return cl_.enqueue_kernel(k_, dims, global, local, name_);
}

ClDims cl_dims(const std::vector<int64_t>& d) {
  ClDims r;
  for (size_t i = 0; i < d.size() && i < static_cast<size_t>(kClMaxDims); ++i)
    r.v[i] = static_cast<cl_int>(d[i]);
  return r;
}

}  // namespace kiln
