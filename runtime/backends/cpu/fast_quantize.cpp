// Per-tensor QuantizeLinear / DequantizeLinear on the cpu fast path: the reference kernels run
// on ranges of the flattened tensor by the run's OpenMP team (elementwise with one scale and
// zero point, so the result is exactly the reference's, in either layout).
#include <omp.h>

#include <algorithm>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

constexpr int64_t kChunk = 1 << 14;

class QuantizePlan : public FastNodePlan {
 public:
  CpuKernelFn ref = nullptr;
  LayoutUse input_use(size_t i) const override { return i == 0 ? LayoutUse::kFollow : LayoutUse::kPlain; }
  LayoutUse output_use(size_t) const override { return LayoutUse::kFollow; }
  const char* name() const override { return "fast:quantize"; }
  std::unique_ptr<FastKernel> instance() const override;
};

class QuantizeKernel : public FastKernel {
 public:
  explicit QuantizeKernel(const QuantizePlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override {
    const int64_t n = a.inputs[0].numel();
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    const int threads = static_cast<int>(std::min<int64_t>(a.ctx.threads, chunks));
    if (threads <= 1) return p_.ref(CpuKernelArgs{a.node, a.inputs, a.outputs});
    Status first;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t b = c * kChunk, len = std::min(n, b + kChunk) - b;
      std::vector<TensorView> in = a.inputs, out = a.outputs;
      in[0] = TensorView{in[0].dtype, {len}, static_cast<uint8_t*>(in[0].data) + b * dtype_size(in[0].dtype)};
      out[0] = TensorView{out[0].dtype, {len}, static_cast<uint8_t*>(out[0].data) + b * dtype_size(out[0].dtype)};
      Status st = p_.ref(CpuKernelArgs{a.node, in, out});
      if (!st) {
#pragma omp critical
        if (first.is_ok()) first = st;
      }
    }
    return first;
  }

 private:
  const QuantizePlan& p_;
};

std::unique_ptr<FastKernel> QuantizePlan::instance() const { return std::make_unique<QuantizeKernel>(*this); }

Status prepare_quantize(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  // One scale (and zero point) for the whole tensor: qmode 0, scalars.
  if (node.attrs.get_int("qmode", 0) != 0 || node.inputs.size() < 2 || node.outputs.size() != 1 || node.inputs[0] < 0)
    return Status::ok();
  for (size_t i = 1; i < node.inputs.size(); ++i)
    if (node.inputs[i] >= 0 && shape_numel(plan.tensors[node.inputs[i]].shape) != 1) return Status::ok();
  const DType x = plan.tensors[node.inputs[0]].dtype, y = plan.tensors[node.outputs[0]].dtype;
  const bool q = node.op == "QuantizeLinear";
  const DType f = q ? x : y, i = q ? y : x;
  if (f != DType::kFloat32 || (i != DType::kInt8 && i != DType::kUInt8)) return Status::ok();
  auto p = std::make_shared<QuantizePlan>();
  p->ref = cpu_registry().find(node.op);
  if (!p->ref) return Status::ok();
  *out = std::move(p);
  return Status::ok();
}

}  // namespace

void register_fast_quantize_fast(FastRegistry& r) {
  r.add("QuantizeLinear", prepare_quantize);
  r.add("DequantizeLinear", prepare_quantize);
}

}  // namespace kiln
