#include "runtime/backends/cpu/fast_nonfinite.h"

#include <cmath>
#include <cstring>

#include "runtime/core/half.h"
#include "runtime/core/tensor.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/ops/linear_epilogue.h"

namespace kiln {
namespace {

bool non_finite(const TensorView& t) {
  const int64_t n = t.numel();
  if (t.dtype == DType::kFloat32) {
    const float* p = static_cast<const float*>(t.data);
    bool bad = false;
    for (int64_t i = 0; i < n; ++i) bad |= !std::isfinite(p[i]);  // no early exit: vectorizes
    return bad;
  }
  if (t.dtype == DType::kFloat16) {
    const uint16_t* p = static_cast<const uint16_t*>(t.data);
    bool bad = false;
    for (int64_t i = 0; i < n; ++i) bad |= (p[i] & 0x7c00) == 0x7c00;  // exponent all ones
    return bad;
  }
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

bool has_non_finite_operand(const Plan& plan, const PlanNode& node, const std::vector<TensorView>& inputs) {
  for (size_t i = 0; i < inputs.size() && i < node.inputs.size(); ++i) {
    const int32_t t = node.inputs[i];
    if (t < 0 || !inputs[i].data || plan.tensors[t].kind == TensorKind::kConstant) continue;
    if (non_finite(inputs[i])) return true;
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
