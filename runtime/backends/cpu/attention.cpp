// CPU reference kernel of the fused Attention op (runtime/backends/attention_geometry.h): one
// query row at a time, the scores of the row kept in a buffer, float32 dot products and a
// double softmax denominator and weighted sum, so it stays a trustworthy reference for the
// OpenCL kernel's online softmax. FP16 nodes run it on widened float32 copies.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/backends/attention_geometry.h"
#include "runtime/core/half.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/profile/node_cost.h"

namespace kiln {
namespace {

Status attention_cpu(const CpuKernelArgs& a) {
  const bool has_mask = a.has_input(attngeo::kMaskInput);
  attngeo::Geometry g;
  KILN_TRY(attngeo::geometry(a.inputs[0].shape, a.inputs[1].shape, a.inputs[2].shape,
                             has_mask ? &a.inputs[attngeo::kMaskInput].shape : nullptr, a.outputs[0].shape,
                             a.attrs(), &g));
  for (size_t i = 0; i < 3 + (has_mask ? 1 : 0); ++i)
    if (a.inputs[i].dtype != DType::kFloat32) return invalid_plan("Attention: operands must be float32 or float16");
  if (a.outputs[0].dtype != DType::kFloat32) return invalid_plan("Attention: the output must be float32 or float16");
  const float* q = a.inputs[0].as<float>() + g.q_off;
  const float* k = a.inputs[1].as<float>() + g.k_off;
  const float* v = a.inputs[2].as<float>() + g.v_off;
  const float* m = has_mask ? a.inputs[attngeo::kMaskInput].as<float>() : nullptr;
  float* y = a.outputs[0].as<float>();
  std::vector<float> s(static_cast<size_t>(g.sk));
  std::vector<double> acc(static_cast<size_t>(g.dv));
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t h = 0; h < g.heads; ++h) {
      const float* qb = q + b * g.q[0] + h * g.q[1];
      const float* kb = k + b * g.k[0] + h * g.k[1];
      const float* vb = v + b * g.v[0] + h * g.v[1];
      float* yb = y + b * g.y[0] + h * g.y[1];
      for (int64_t i = 0; i < g.sq; ++i) {
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < g.sk; ++j) {
          float dot = 0.f;
          for (int64_t c = 0; c < g.d; ++c) dot += qb[i * g.q[2] + c * g.q[3]] * kb[j * g.k[2] + c * g.k[3]];
          float x = dot * g.scale;
          if (m) x += m[b * g.mask[0] + h * g.mask[1] + i * g.mask[2] + j * g.mask[3]];
          if (g.half_scores) x = half_to_float(float_to_half(x));
          s[j] = x;
          mx = std::fmax(mx, x);
        }
        // All -inf: exp(-inf - -inf) is NaN, so the row is NaN, as Softmax gives.
        double sum = 0.0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < g.sk; ++j) {
          const double p = std::exp(static_cast<double>(s[j]) - mx);
          sum += p;
          for (int64_t c = 0; c < g.dv; ++c) acc[c] += p * vb[j * g.v[2] + c * g.v[3]];
        }
        // No keys at all: an empty MatMul, zeros.
        for (int64_t c = 0; c < g.dv; ++c) yb[i * g.y[2] + c * g.y[3]] = g.sk ? static_cast<float>(acc[c] / sum) : 0.f;
      }
    }
  return Status::ok();
}

// Two multiply-adds per score and key/value element (Q K^T and P V) plus about five operations
// per score for the scale, mask, max, exp and sum.
double attention_cost(const Plan& p, const PlanNode& n) {
  if (n.inputs.size() < 3 || n.outputs.empty()) return output_elements(p, n);
  auto shape = [&](int32_t t) { return p.tensors[t].shape; };
  for (size_t i = 0; i < 3; ++i)
    if (n.inputs[i] < 0) return output_elements(p, n);
  const bool mask = n.inputs.size() > attngeo::kMaskInput && n.inputs[attngeo::kMaskInput] >= 0;
  const Shape m = mask ? shape(n.inputs[attngeo::kMaskInput]) : Shape{};
  attngeo::Geometry g;
  if (!attngeo::geometry(shape(n.inputs[0]), shape(n.inputs[1]), shape(n.inputs[2]), mask ? &m : nullptr,
                         shape(n.outputs[0]), n.attrs, &g))
    return output_elements(p, n);
  const double scores = static_cast<double>(g.batch * g.heads * g.sq) * static_cast<double>(g.sk);
  return scores * (2.0 * static_cast<double>(g.d + g.dv) + 5.0);
}

}  // namespace

void register_attention_cpu(CpuRegistry& r) {
  r.add(attngeo::kOp, attention_cpu, CpuFloat16::kWidened).arity(3, 1).cost(attention_cost).quantized_output(4);
}

}  // namespace kiln
