// Plan-lifetime operands of the oneDNN kernels: weights reordered once into a primitive's
// layout (shared read-only by every context), constant operands read in place from the plan,
// and the questions prepare functions ask about a node's operands.
#pragma once
#include <memory>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct PackedWeights {
  dnnl::memory::desc md;
  std::shared_ptr<void> data;
  // Reorders `src` (described by src_md) into a new buffer laid out as dst_md.
  Status pack(const dnnl::memory::desc& src_md, const void* src, const dnnl::memory::desc& dst_md);
  // Takes `values` (already in md's layout) as the packed data.
  void adopt(const dnnl::memory::desc& m, std::shared_ptr<void> values) {
    md = m;
    data = std::move(values);
  }
  dnnl::memory memory() const { return dnnl::memory(md, dnnl_util::engine(), data.get()); }
  bool empty() const { return !data; }
};

// A constant tensor of the plan, read where the plan holds it.
struct ConstOperand {
  const void* data = nullptr;
  dnnl::memory::desc md;
  static ConstOperand of(const Plan& plan, int32_t t);
  dnnl::memory memory() const { return dnnl::memory(md, dnnl_util::engine(), const_cast<void*>(data)); }
};

// A zero-initialized, 64-byte aligned buffer of `bytes` (shared, for PackedWeights::adopt).
std::shared_ptr<void> aligned_buffer(size_t bytes);

inline bool has_operand(const PlanNode& n, size_t i) { return i < n.inputs.size() && n.inputs[i] >= 0; }
inline bool is_constant(const Plan& p, int32_t t) { return t >= 0 && p.tensors[t].kind == TensorKind::kConstant; }
// Whether every present input and every output of `n` has dtype `t`.
bool operands_are(const Plan& p, const PlanNode& n, DType t);

// Number of eltwise post-ops append_activation adds for `e`.
int activation_post_ops(const linear::Epilogue& e);

}  // namespace kiln
