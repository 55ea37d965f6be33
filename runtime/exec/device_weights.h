// A plan's constants uploaded once per OpenCL device and shared by every execution context of
// that plan on that device (contexts are cheap; weights are not).
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/device/cl_runtime.h"
#include "runtime/plan/plan.h"

namespace kiln {

class DeviceWeights {
 public:
  // The weights of `plan` on OpenCL device `device_index` for the constants that nodes assigned
  // to OpenCL in `backends` read. Created on first request, released with the last context.
  static Status get(const std::shared_ptr<const Plan>& plan, int device_index,
                    const std::vector<Backend>& backends, std::shared_ptr<const DeviceWeights>* out);
  ~DeviceWeights();

  // Buffer of constant tensor `t`, or nullptr if it is not on the device.
  cl_mem buffer(int32_t t) const { return t >= 0 && t < static_cast<int32_t>(bufs_.size()) ? bufs_[t] : nullptr; }
  uint64_t bytes() const { return bytes_; }
  // The 2-D constant `t` ([K, N]) in the packed layout of runtime/ops/kernel_api.h (transposed,
  // rows padded to kPackedRowBytes), for kernel variants that read it K-contiguous. Made on
  // first request and shared like the weights themselves.
  Status transposed(int32_t t, cl_mem* out) const;

 private:
  DeviceWeights() = default;
  std::shared_ptr<const Plan> plan_;
  std::shared_ptr<ClDeviceContext> device_;
  std::vector<cl_mem> bufs_;
  uint64_t bytes_ = 0;
  mutable std::mutex packed_mu_;
  mutable std::map<int32_t, cl_mem> transposed_;
};

}  // namespace kiln
