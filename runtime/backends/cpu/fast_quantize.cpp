// Per-tensor QuantizeLinear / DequantizeLinear (float32 <-> int8/uint8) on the cpu fast path:
// vectorized loops over ranges of the flattened tensor, run by the run's OpenMP team. They
// compute the reference kernel's formula (runtime/backends/cpu/quantize.cpp) with the same
// float operations, so the result is bit for bit the reference's, in either layout: quantize
// q = clamp(rint(x / s), lo - zp, hi - zp) + zp (NaN to lo), dequantize (float(q) - zp) * s.
#include "runtime/backends/cpu/fast_quantize.h"

#include <algorithm>
#include <cmath>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/fast_loops.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {

template <typename T>
inline __attribute__((always_inline)) void dequantize_range(const T* x, int64_t n, float s, float z, float* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = (static_cast<float>(x[i]) - z) * s;
}
KILN_SIMD_CLONES void dequantize_s8(const int8_t* x, int64_t n, float s, float z, float* y) { dequantize_range(x, n, s, z, y); }
KILN_SIMD_CLONES void dequantize_u8(const uint8_t* x, int64_t n, float s, float z, float* y) { dequantize_range(x, n, s, z, y); }

namespace {

constexpr int64_t kChunk = 1 << 14;

template <typename T>
inline __attribute__((always_inline)) void quantize_range(const float* x, int64_t n, float s, float z, T* y) {
  constexpr float kLo = std::is_signed<T>::value ? -128.f : 0.f, kHi = std::is_signed<T>::value ? 127.f : 255.f;
  const float lo = kLo - z, hi = kHi - z;
  const int32_t zi = static_cast<int32_t>(z);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float v = std::nearbyint(x[i] / s);
    v = !(v >= lo) ? lo : v;  // fmax(v, lo) as the reference has it: NaN becomes lo
    v = v > hi ? hi : v;
    y[i] = static_cast<T>(static_cast<int32_t>(v) + zi);
  }
}

KILN_SIMD_CLONES void quantize_s8(const float* x, int64_t n, float s, float z, int8_t* y) { quantize_range(x, n, s, z, y); }
KILN_SIMD_CLONES void quantize_u8(const float* x, int64_t n, float s, float z, uint8_t* y) { quantize_range(x, n, s, z, y); }

// Elements [b, b + len) of the node's output from its input.
void convert_range(const FastRunArgs& a, int64_t b, int64_t len) {
  const TensorView& x = a.inputs[0];
  const TensorView& y = a.outputs[0];
  const float s = a.inputs[1].as<float>()[0];
  const bool zp = a.has_input(2);
  if (a.node.op == "QuantizeLinear") {
    const float* in = x.as<float>() + b;
    if (y.dtype == DType::kInt8) quantize_s8(in, len, s, zp ? a.inputs[2].as<int8_t>()[0] : 0.f, y.as<int8_t>() + b);
    else quantize_u8(in, len, s, zp ? a.inputs[2].as<uint8_t>()[0] : 0.f, y.as<uint8_t>() + b);
    return;
  }
  float* out = y.as<float>() + b;
  if (x.dtype == DType::kInt8) dequantize_s8(x.as<int8_t>() + b, len, s, zp ? a.inputs[2].as<int8_t>()[0] : 0.f, out);
  else dequantize_u8(x.as<uint8_t>() + b, len, s, zp ? a.inputs[2].as<uint8_t>()[0] : 0.f, out);
}

class QuantizePlan : public FastNodePlan {
 public:
  LayoutUse input_use(size_t i) const override { return i == 0 ? LayoutUse::kFollow : LayoutUse::kPlain; }
  LayoutUse output_use(size_t) const override { return LayoutUse::kFollow; }
  const char* name() const override { return "fast:quantize"; }
  std::unique_ptr<FastKernel> instance() const override;
};

class QuantizeKernel : public FastKernel {
 public:
  explicit QuantizeKernel(const QuantizePlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override {
    for_each_chunk(a.ctx.threads, a.inputs[0].numel(), kChunk, [&](int64_t b, int64_t len) { convert_range(a, b, len); });
    return Status::ok();
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
  // The zero point (when given) has the integer type, as the op rules check.
  if (node.inputs.size() > 2 && node.inputs[2] >= 0 && plan.tensors[node.inputs[2]].dtype != i) return Status::ok();
  *out = std::make_shared<QuantizePlan>();
  return Status::ok();
}

}  // namespace

void register_fast_quantize_fast(FastRegistry& r) {
  r.add("QuantizeLinear", prepare_quantize);
  r.add("DequantizeLinear", prepare_quantize);
}

}  // namespace kiln
