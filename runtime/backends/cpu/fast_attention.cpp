// The fused Attention op on the cpu fast path: per (batch, head), scores = Q K^T and Y = P V as
// kiln's blocked SGEMM (linear_sgemm.h) with the scale, mask and softmax applied row by row in
// between, the (batch, head) pairs spread over the run's OpenMP team. The reference kernel
// (runtime/backends/cpu/attention.cpp) computes one dot product at a time in double and stays
// the oracle; this one differs by float summation order only. Dense row-major operands only
// (what the fusion pass makes); others run the reference kernel.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/backends/attention_geometry.h"
#include "runtime/backends/cpu/dnnl_common.h"  // FastRunContext
#include "runtime/backends/cpu/linear_sgemm.h"
#include "runtime/core/half.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

class AttentionPlan : public FastNodePlan {
 public:
  const char* name() const override { return "fast:attention"; }
  std::unique_ptr<FastKernel> instance() const override;
};

// One (batch, head): rows of scores in `s` ([sq, sk]).
void attend(const attngeo::Geometry& g, const float* q, const float* k, const float* v, const float* mask, float* y,
            int64_t b, int64_t h, std::vector<float>* scratch) {
  const float* qb = q + b * g.q[0] + h * g.q[1];
  const float* kb = k + b * g.k[0] + h * g.k[1];
  const float* vb = v + b * g.v[0] + h * g.v[1];
  float* yb = y + b * g.y[0] + h * g.y[1];
  if (g.sk == 0) {
    for (int64_t i = 0; i < g.sq; ++i) std::fill(yb + i * g.y[2], yb + i * g.y[2] + g.dv, 0.f);
    return;
  }
  scratch->resize(static_cast<size_t>(g.sq * g.sk));
  float* s = scratch->data();
  const linear::GemmEpilogue none;
  // K is [sk, d] (k[3] == 1) or, transposed, [d, sk] (k[2] == 1).
  const bool k_rows = g.k[3] == 1;
  linear::sgemm(false, k_rows, g.sq, g.sk, g.d, qb, g.q[2], kb, k_rows ? g.k[2] : g.k[3], s, g.sk, none);
  for (int64_t i = 0; i < g.sq; ++i) {
    float* row = s + i * g.sk;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < g.sk; ++j) {
      float x = row[j] * g.scale;
      if (mask) x += mask[b * g.mask[0] + h * g.mask[1] + i * g.mask[2] + j * g.mask[3]];
      if (g.half_scores) x = half_to_float(float_to_half(x));
      row[j] = x;
      mx = std::fmax(mx, x);
    }
    // All -inf: exp(-inf - -inf) is NaN, so the row is NaN, as Softmax gives.
    float sum = 0.f;
    for (int64_t j = 0; j < g.sk; ++j) sum += row[j] = std::exp(row[j] - mx);
    const float inv = 1.f / sum;
    for (int64_t j = 0; j < g.sk; ++j) row[j] *= inv;
  }
  linear::sgemm(false, false, g.sq, g.dv, g.sk, s, g.sk, vb, g.v[2], yb, g.y[2], none);
}

class AttentionKernel : public FastKernel {
 public:
  Status run(const FastRunArgs& a) override {
    const bool has_mask = a.has_input(attngeo::kMaskInput);
    attngeo::Geometry g;
    KILN_TRY(attngeo::geometry(a.inputs[0].shape, a.inputs[1].shape, a.inputs[2].shape,
                               has_mask ? &a.inputs[attngeo::kMaskInput].shape : nullptr, a.outputs[0].shape,
                               a.node.attrs, &g));
    const bool dense = g.q[3] == 1 && g.v[3] == 1 && g.y[3] == 1 && (g.k[3] == 1 || g.k[2] == 1);
    if (!dense) return cpu_registry().find(attngeo::kOp)(CpuKernelArgs{a.node, a.inputs, a.outputs});
    const float* q = a.inputs[0].as<float>();
    const float* k = a.inputs[1].as<float>();
    const float* v = a.inputs[2].as<float>();
    const float* m = has_mask ? a.inputs[attngeo::kMaskInput].as<float>() : nullptr;
    float* y = a.outputs[0].as<float>();
    const int64_t pairs = g.batch * g.heads;
    const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(a.ctx.threads, pairs)));
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> scratch;
#pragma omp for schedule(static)
      for (int64_t p = 0; p < pairs; ++p) attend(g, q, k, v, m, y, p / g.heads, p % g.heads, &scratch);
    }
    return Status::ok();
  }
};

std::unique_ptr<FastKernel> AttentionPlan::instance() const { return std::make_unique<AttentionKernel>(); }

Status prepare_attention(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  if (node.inputs.size() < 3 || node.outputs.size() != 1) return Status::ok();
  for (size_t i = 0; i < node.inputs.size(); ++i)
    if (node.inputs[i] >= 0 && plan.tensors[node.inputs[i]].dtype != DType::kFloat32) return Status::ok();
  if (plan.tensors[node.outputs[0]].dtype != DType::kFloat32) return Status::ok();
  *out = std::make_shared<AttentionPlan>();
  return Status::ok();
}

}  // namespace

void register_fast_attention_fast(FastRegistry& r) { r.add(attngeo::kOp, prepare_attention); }

}  // namespace kiln
