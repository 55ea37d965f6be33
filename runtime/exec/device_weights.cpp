#include "runtime/exec/device_weights.h"

#include <map>
#include <mutex>

namespace kiln {

Status DeviceWeights::get(const std::shared_ptr<const Plan>& plan, int device_index,
                          const std::vector<Backend>& backends, std::shared_ptr<const DeviceWeights>* out) {
  static std::mutex mu;
  static std::map<std::pair<const Plan*, int>, std::weak_ptr<const DeviceWeights>> live;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_pair(plan.get(), device_index);
  if (auto w = live[key].lock()) {
    *out = w;
    return Status::ok();
  }
  std::shared_ptr<DeviceWeights> w(new DeviceWeights());
  w->plan_ = plan;
  KILN_TRY(ClDeviceContext::get(device_index, &w->device_));
  const Plan& p = *plan;
  w->bufs_.assign(p.tensors.size(), nullptr);
  std::unique_ptr<ClRuntime> uploader;
  KILN_TRY(ClRuntime::create(w->device_, &uploader));
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    if (backends[i] != Backend::kOpenCL) continue;
    for (int32_t t : p.nodes[i].inputs) {
      if (t < 0 || p.tensors[t].kind != TensorKind::kConstant || w->bufs_[t]) continue;
      const PlanTensor& pt = p.tensors[t];
      KILN_TRY(uploader->alloc(pt.bytes(), &w->bufs_[t], "weights '" + pt.name + "'"));
      KILN_TRY(uploader->upload(w->bufs_[t], p.weight_data(pt), pt.bytes(), "weights '" + pt.name + "'"));
      w->bytes_ += pt.bytes();
    }
  }
  KILN_TRY(uploader->finish());
  live[key] = w;
  *out = std::move(w);
  return Status::ok();
}

DeviceWeights::~DeviceWeights() {
  for (cl_mem m : bufs_)
    if (m) clReleaseMemObject(m);
}

}  // namespace kiln
