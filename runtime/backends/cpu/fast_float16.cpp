#include "runtime/backends/cpu/fast_float16.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/core/half.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

bool has_f16(const Plan& p, const PlanNode& n) {
  for (const auto* list : {&n.inputs, &n.outputs})
    for (int32_t t : *list)
      if (t >= 0 && p.tensors[t].dtype == DType::kFloat16) return true;
  return false;
}

void convert(const TensorView& from, const TensorView& to, int threads) {
  const int64_t n = from.numel();
  const int team = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n / 32768)));
  if (from.dtype == DType::kFloat16) {
    const uint16_t* s = from.as<uint16_t>();
    float* d = to.as<float>();
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t i = 0; i < n; ++i) d[i] = half_to_float(s[i]);
  } else {
    const float* s = from.as<float>();
    uint16_t* d = to.as<uint16_t>();
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t i = 0; i < n; ++i) d[i] = float_to_half(s[i]);
  }
}

class WidenedKernel : public FastKernel {
 public:
  explicit WidenedKernel(std::unique_ptr<FastKernel> inner) : inner_(std::move(inner)) {}
  Status run(const FastRunArgs& a) override {
    const size_t slots = a.inputs.size() + a.outputs.size();
    if (bufs_.size() < slots) bufs_ = std::vector<dnnl_util::Buffer>(slots);
    in_ = a.inputs;
    out_ = a.outputs;
    for (size_t i = 0; i < in_.size(); ++i) {
      if (in_[i].dtype != DType::kFloat16 || !in_[i].data) continue;
      in_[i] = TensorView{DType::kFloat32, in_[i].shape, bufs_[i].get(in_[i].numel() * sizeof(float))};
      convert(a.inputs[i], in_[i], a.ctx.threads);
    }
    for (size_t i = 0; i < out_.size(); ++i)
      if (out_[i].dtype == DType::kFloat16)
        out_[i] = TensorView{DType::kFloat32, out_[i].shape, bufs_[in_.size() + i].get(out_[i].numel() * sizeof(float))};
    KILN_TRY(inner_->run(FastRunArgs{a.node, in_, out_, a.in_layout, a.out_layout, a.ctx}));
    for (size_t i = 0; i < out_.size(); ++i)
      if (a.outputs[i].dtype == DType::kFloat16) convert(out_[i], a.outputs[i], a.ctx.threads);
    return Status::ok();
  }

 private:
  std::unique_ptr<FastKernel> inner_;
  std::vector<dnnl_util::Buffer> bufs_;
  std::vector<TensorView> in_, out_;
};

class Float16Node : public FastNodePlan {
 public:
  explicit Float16Node(std::shared_ptr<const FastNodePlan> inner) : inner_(std::move(inner)) {}
  const char* name() const override { return inner_->name(); }
  std::unique_ptr<FastKernel> instance() const override { return std::make_unique<WidenedKernel>(inner_->instance()); }

 private:
  std::shared_ptr<const FastNodePlan> inner_;
};

}  // namespace

bool widens_float16(const Plan& plan, const PlanNode& n) {
  return has_f16(plan, n) && cpu_registry().widens_float16(n.op);
}

std::unique_ptr<Plan> widened_plan(const Plan& plan) {
  auto w = std::make_unique<Plan>();
  w->tensors = plan.tensors;
  w->nodes = plan.nodes;
  w->inputs = plan.inputs;
  w->outputs = plan.outputs;
  w->target = plan.target;
  std::vector<uint8_t> wanted(plan.tensors.size(), 0);
  for (const PlanNode& n : plan.nodes) {
    if (!widens_float16(plan, n)) continue;
    for (const auto* list : {&n.inputs, &n.outputs})
      for (int32_t t : *list)
        if (t >= 0) wanted[t] = 1;
  }
  uint64_t size = 0;
  for (size_t t = 0; t < plan.tensors.size(); ++t) {
    PlanTensor& pt = w->tensors[t];
    if (!wanted[t]) {
      if (pt.kind == TensorKind::kConstant) pt.weight_offset = pt.weight_bytes = 0;
      continue;
    }
    if (pt.dtype == DType::kFloat16) pt.dtype = DType::kFloat32;
    if (pt.kind != TensorKind::kConstant) continue;
    pt.weight_offset = size;
    pt.weight_bytes = pt.bytes();
    size += (pt.weight_bytes + 63) / 64 * 64;
  }
  w->weights.assign(size, 0);
  for (size_t t = 0; t < plan.tensors.size(); ++t) {
    const PlanTensor& src = plan.tensors[t];
    const PlanTensor& dst = w->tensors[t];
    if (!wanted[t] || src.kind != TensorKind::kConstant) continue;
    uint8_t* out = w->weights.data() + dst.weight_offset;
    if (src.dtype == DType::kFloat16) {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(plan.weight_data(src));
      float* f = reinterpret_cast<float*>(out);
      for (int64_t i = 0; i < shape_numel(src.shape); ++i) f[i] = half_to_float(h[i]);
    } else {
      std::memcpy(out, plan.weight_data(src), src.bytes());
    }
  }
  return w;
}

std::shared_ptr<const FastNodePlan> float16_node(std::shared_ptr<const FastNodePlan> inner) {
  return std::make_shared<Float16Node>(std::move(inner));
}

}  // namespace kiln
