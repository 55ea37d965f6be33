#include "runtime/ops/cpu_float16.h"

#include <cstdint>

#include "runtime/core/half.h"

namespace kiln {
namespace {

struct Widened {
  std::vector<std::vector<float>> buffers;
  std::vector<TensorView> in, out;
};

TensorView widened_view(const TensorView& v, std::vector<float>* buf) {
  const size_t n = static_cast<size_t>(v.numel());
  if (buf->size() < n) buf->resize(n);
  return TensorView{DType::kFloat32, v.shape, buf->data()};
}

}  // namespace

bool has_float16(const std::vector<TensorView>& inputs, const std::vector<TensorView>& outputs) {
  for (const auto* list : {&inputs, &outputs})
    for (const TensorView& v : *list)
      if (v.dtype == DType::kFloat16) return true;
  return false;
}

Status run_widened_float16(CpuKernelFn fn, const PlanNode& node, const std::vector<TensorView>& inputs,
                           const std::vector<TensorView>& outputs) {
  // thread_local: CPU segments of concurrent inferences run on different threads, and a node
  // never calls back into run_cpu_kernel, so one set per thread is never shared.
  thread_local Widened w;
  const size_t slots = inputs.size() + outputs.size();
  if (w.buffers.size() < slots) w.buffers.resize(slots);
  w.in.assign(inputs.begin(), inputs.end());
  w.out.assign(outputs.begin(), outputs.end());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].dtype != DType::kFloat16 || !inputs[i].data) continue;
    w.in[i] = widened_view(inputs[i], &w.buffers[i]);
    const uint16_t* src = inputs[i].as<uint16_t>();
    float* dst = w.in[i].as<float>();
    for (int64_t k = 0, n = inputs[i].numel(); k < n; ++k) dst[k] = half_to_float(src[k]);
  }
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].dtype == DType::kFloat16) w.out[i] = widened_view(outputs[i], &w.buffers[inputs.size() + i]);
  KILN_TRY(fn(CpuKernelArgs{node, w.in, w.out}));
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].dtype != DType::kFloat16) continue;
    const float* src = w.out[i].as<float>();
    uint16_t* dst = outputs[i].as<uint16_t>();
    for (int64_t k = 0, n = outputs[i].numel(); k < n; ++k) dst[k] = float_to_half(src[k]);
  }
  return Status::ok();
}

}  // namespace kiln
