// The fused Attention op on the cpu fast path: per (batch, head), scores = scale Q K^T and
// Y = P V as oneDNN's SGEMM (JIT for the host's ISA), with the mask and a vectorized softmax
// (fast_softmax.h) applied row by row in between, the (batch, head) pairs spread over the run's
// OpenMP team (each pair's GEMMs then run on its thread alone). The reference kernel
// (runtime/backends/cpu/attention.cpp) computes one dot product at a time in double and stays
// the oracle; this one differs by float summation order and exp's last ulps. Dense row-major
// operands only (what the fusion pass makes); others run the reference kernel.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/backends/attention_geometry.h"
#include "runtime/backends/cpu/dnnl_common.h"  // FastRunContext
#include "runtime/backends/cpu/fast_softmax.h"
#include "runtime/core/half.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

class AttentionPlan : public FastNodePlan {
 public:
  const char* name() const override { return "fast:attention"; }
  std::unique_ptr<FastKernel> instance() const override;
};

// One (batch, head): rows of scores in `scratch` ([sq, sk]).
dnnl_status_t attend(const attngeo::Geometry& g, const float* q, const float* k, const float* v, const float* mask,
                     float* y, int64_t b, int64_t h, std::vector<float>* scratch) {
  const float* qb = q + b * g.q[0] + h * g.q[1];
  const float* kb = k + b * g.k[0] + h * g.k[1];
  const float* vb = v + b * g.v[0] + h * g.v[1];
  float* yb = y + b * g.y[0] + h * g.y[1];
  if (g.sk == 0) {
    for (int64_t i = 0; i < g.sq; ++i) std::fill(yb + i * g.y[2], yb + i * g.y[2] + g.dv, 0.f);
    return dnnl_success;
  }
  scratch->resize(static_cast<size_t>(g.sq * g.sk));
  float* s = scratch->data();
  // K is [sk, d] (k[3] == 1) or, transposed, [d, sk] (k[2] == 1).
  const bool k_rows = g.k[3] == 1;
  // A single key's row stride is whatever the shape made it (1 for [d, 1]): sgemm wants >= d.
  const int64_t ldk = k_rows ? (g.sk == 1 ? std::max<int64_t>(g.k[2], g.d) : g.k[2]) : g.k[3];
  dnnl_status_t st = dnnl_sgemm('N', k_rows ? 'T' : 'N', g.sq, g.sk, g.d, g.scale, qb, g.q[2], kb, ldk, 0.f, s, g.sk);
  if (st != dnnl_success) return st;
  for (int64_t i = 0; i < g.sq; ++i) {
    float* row = s + i * g.sk;
    if (mask) {
      const float* m = mask + b * g.mask[0] + h * g.mask[1] + i * g.mask[2];
      for (int64_t j = 0; j < g.sk; ++j) row[j] += m[j * g.mask[3]];
    }
    if (g.half_scores)
      for (int64_t j = 0; j < g.sk; ++j) row[j] = half_to_float(float_to_half(row[j]));
    softmax_row(row, g.sk);
  }
  return dnnl_sgemm('N', 'N', g.sq, g.dv, g.sk, 1.f, s, g.sk, vb, g.v[2], 0.f, yb, g.y[2]);
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
    const float* q = a.inputs[0].as<float>() + g.q_off;
    const float* k = a.inputs[1].as<float>() + g.k_off;
    const float* v = a.inputs[2].as<float>() + g.v_off;
    const float* m = has_mask ? a.inputs[attngeo::kMaskInput].as<float>() : nullptr;
    float* y = a.outputs[0].as<float>();
    const int64_t pairs = g.batch * g.heads;
    const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(a.ctx.threads, pairs)));
    dnnl_status_t failed = dnnl_success;
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> scratch;
#pragma omp for schedule(static)
      for (int64_t p = 0; p < pairs; ++p) {
        const dnnl_status_t st = attend(g, q, k, v, m, y, p / g.heads, p % g.heads, &scratch);
        if (st != dnnl_success) {
#pragma omp critical
          failed = st;
        }
      }
    }
    if (failed != dnnl_success)
      return internal_error("Attention '" + a.node.name + "': oneDNN sgemm failed (status " + std::to_string(failed) + ")");
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
