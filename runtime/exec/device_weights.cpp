#include "runtime/exec/device_weights.h"

#include "runtime/ops/kernel_api.h"

#include <cstring>
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
  for (auto& [t, m] : transposed_) clReleaseMemObject(m);
}

Status DeviceWeights::transposed(int32_t t, cl_mem* out) const {
  const Plan& p = *plan_;
  if (t < 0 || t >= static_cast<int32_t>(p.tensors.size()) || p.tensors[t].kind != TensorKind::kConstant ||
      p.tensors[t].shape.size() != 2)
    return invalid_plan("a packed kernel input must be a 2-D constant");
  std::lock_guard<std::mutex> lock(packed_mu_);
  auto it = transposed_.find(t);
  if (it != transposed_.end()) {
    *out = it->second;
    return Status::ok();
  }
  const PlanTensor& pt = p.tensors[t];
  const int64_t rows = pt.shape[0], cols = pt.shape[1];
  const size_t es = dtype_size(pt.dtype);
  const int64_t ld = packed_row_elems(rows, es);
  std::vector<uint8_t> host(static_cast<size_t>(cols * ld) * es, 0);
  const uint8_t* src = p.weight_data(pt);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) std::memcpy(&host[(c * ld + r) * es], &src[(r * cols + c) * es], es);
  std::unique_ptr<ClRuntime> uploader;
  KILN_TRY(ClRuntime::create(device_, &uploader));
  cl_mem m = nullptr;
  KILN_TRY(uploader->alloc(host.size(), &m, "transposed weights '" + pt.name + "'"));
  Status st = uploader->upload(m, host.data(), host.size(), "transposed weights '" + pt.name + "'");
  if (st) st = uploader->finish();
  if (!st) {
    clReleaseMemObject(m);
    return st;
  }
  transposed_[t] = m;
  *out = m;
  return Status::ok();
}

}  // namespace kiln
