#include "runtime/backends/cpu/fast_nonfinite.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/backends/cpu/fast_loops.h"
#include "runtime/core/half.h"
#include "runtime/core/tensor.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/ops/linear_epilogue.h"

namespace kiln {
namespace {

// The largest exponent field among n IEEE values (all ones: a NaN or an infinity). Integer max
// reductions vectorize at every target_clones ISA, unlike isfinite. (Two functions, not one
// template: see fast_loops.h.)
template <typename Bits>
inline __attribute__((always_inline)) Bits max_exponent_of(const Bits* p, int64_t n, Bits mask) {
  Bits m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Bits e = p[i] & mask;
    m = e > m ? e : m;
  }
  return m;
}
KILN_SIMD_CLONES uint32_t max_exponent32(const uint32_t* p, int64_t n, uint32_t mask) {
  return max_exponent_of(p, n, mask);
}
KILN_SIMD_CLONES uint16_t max_exponent16(const uint16_t* p, int64_t n, uint16_t mask) {
  return max_exponent_of(p, n, mask);
}

inline uint32_t max_exponent(const uint32_t* p, int64_t n, uint32_t mask) { return max_exponent32(p, n, mask); }
inline uint16_t max_exponent(const uint16_t* p, int64_t n, uint16_t mask) { return max_exponent16(p, n, mask); }

template <typename Bits>
bool any_non_finite(const void* data, int64_t n, Bits mask, int threads) {
  const Bits* p = static_cast<const Bits*>(data);
  constexpr int64_t kChunk = 1 << 16;  // elements per task: below this one thread scans
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  if (threads <= 1 || chunks <= 1) return max_exponent(p, n, mask) == mask;
  Bits m = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(max : m)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kChunk;
    const Bits e = max_exponent(p + b, std::min(n, b + kChunk) - b, mask);
    m = e > m ? e : m;
  }
  return m == mask;
}

bool non_finite(const TensorView& t, int threads) {
  if (t.dtype == DType::kFloat32) return any_non_finite<uint32_t>(t.data, t.numel(), 0x7f800000u, threads);
  if (t.dtype == DType::kFloat16) return any_non_finite<uint16_t>(t.data, t.numel(), static_cast<uint16_t>(0x7c00u), threads);
  return false;
}

// [N, C, H, W] elements between plain (NCHW) and channels-last (NHWC) storage.
void permute(const TensorView& t, const void* src, void* dst, bool to_plain) {
  const int64_t N = t.shape[0], C = t.shape[1], HW = t.shape[2] * t.shape[3];
  const size_t es = dtype_size(t.dtype);
  const uint8_t* s = static_cast<const uint8_t*>(src);
  uint8_t* d = static_cast<uint8_t*>(dst);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t plain = (n * C + c) * HW + i, last = (n * HW + i) * C + c;
        std::memcpy(d + (to_plain ? plain : last) * es, s + (to_plain ? last : plain) * es, es);
      }
}

bool channels_last(const std::vector<HostLayout>& l, size_t i, const TensorView& t) {
  return i < l.size() && l[i] == HostLayout::kChannelsLast && t.shape.size() == 4 && t.data;
}

}  // namespace

bool activation_drops_nan(const PlanNode& node) {
  if (node.op != "Conv" && node.op != "ConvTranspose" && node.op != "Gemm" && node.op != "MatMul" &&
      node.op != "Fp8Conv" && node.op != "Fp8MatMul")
    return false;
  const linear::Activation a = linear::activation_from_name(node.attrs.get_string(linear::kAttrActivation, ""));
  return a == linear::Activation::kRelu || a == linear::Activation::kClip || a == linear::Activation::kHardSigmoid;
}

bool has_non_finite_operand(const Plan& plan, const PlanNode& node, const std::vector<TensorView>& inputs,
                            std::vector<uint8_t>* known, int threads) {
  for (size_t i = 0; i < inputs.size() && i < node.inputs.size(); ++i) {
    const int32_t t = node.inputs[i];
    if (t < 0 || !inputs[i].data || plan.tensors[t].kind == TensorKind::kConstant) continue;
    uint8_t& k = (*known)[t];
    if (!k) k = non_finite(inputs[i], threads) ? 2 : 1;
    if (k == 2) return true;
  }
  return false;
}

Status run_reference_in_layouts(const PlanNode& node, const std::vector<TensorView>& inputs,
                                const std::vector<TensorView>& outputs, const std::vector<HostLayout>& in_layout,
                                const std::vector<HostLayout>& out_layout) {
  std::vector<HostTensor> copies;
  copies.reserve(inputs.size() + outputs.size());
  std::vector<TensorView> in = inputs, out = outputs;
  for (size_t i = 0; i < in.size(); ++i)
    if (channels_last(in_layout, i, in[i])) {
      copies.emplace_back(in[i].dtype, in[i].shape);
      permute(in[i], in[i].data, copies.back().data(), true);
      in[i].data = copies.back().data();
    }
  for (size_t i = 0; i < out.size(); ++i)
    if (channels_last(out_layout, i, out[i])) {
      copies.emplace_back(out[i].dtype, out[i].shape);
      out[i].data = copies.back().data();
    }
  KILN_TRY(run_cpu_kernel(node, in, out));
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i].data != outputs[i].data) permute(outputs[i], out[i].data, outputs[i].data, false);
  return Status::ok();
}

}  // namespace kiln
