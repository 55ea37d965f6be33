// Elementwise programs on the cpu fast path: the reference interpreter (elementwise_job.h),
// its output split into ranges run by the run's OpenMP team, so results are bit-identical to
// the reference. A program whose inputs all have the output's shape (or one element) is
// layout-blind and follows its output's layout, so it can sit inside a channels-last chain.
//
// One exception: a program of one input and scalar constants that computes GELU (the Erf form
// 0.5 x (1 + erf(x / sqrt 2)) every exporter writes, ONNX's Gelu, or the tanh approximation)
// runs as kiln's vectorized GELU (fast_gelu.h: float, relative error < 5e-7, where the
// interpreter's libm erf costs ~8 ns an element, most of a BERT FFN's non-GEMM time).
// Which programs are GELU is decided by evaluating the program itself at sample points, so any
// spelling of the formula (Div or Mul by 1/sqrt 2, operand order) qualifies. A program that so
// computes SiLU (x * sigmoid(x)) runs as kiln's vectorized SiLU (fast_silu.h) the same way.
#include <algorithm>
#include <cmath>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/elementwise_job.h"
#include "runtime/backends/cpu/fast_gelu.h"
#include "runtime/backends/cpu/fast_loops.h"
#include "runtime/backends/cpu/fast_silu.h"
#include "runtime/ops/gelu_reference.h"
#include "runtime/ops/in_place.h"

namespace kiln {
namespace {

// Below this many output elements one thread does the whole node (the team costs more).
constexpr int64_t kMinParallel = 1 << 14;
constexpr int64_t kChunk = 1 << 12;  // elements per task, a multiple of the interpreter's block

class ElementwisePlan : public FastNodePlan {
 public:
  GeluForm gelu = GeluForm::kNone;  // the program computes GELU
  bool silu = false;                // the program computes SiLU
  size_t unary_input = 0;           // x, for GELU and SiLU
  std::vector<uint8_t> follows;  // per input: read at the output's own index
  bool layout_blind = false;
  LayoutUse input_use(size_t i) const override {
    return layout_blind && i < follows.size() && follows[i] ? LayoutUse::kFollow : LayoutUse::kPlain;
  }
  LayoutUse output_use(size_t) const override { return layout_blind ? LayoutUse::kFollow : LayoutUse::kPlain; }
  const char* name() const override {
    return gelu != GeluForm::kNone ? "fast:gelu" : silu ? "fast:silu" : "fast:elementwise";
  }
  std::unique_ptr<FastKernel> instance() const override;
  // GELU's erfc and exp: ~1 ns an element on an AVX-512 core (~30 us for a 64 x 512 FFN
  // activation), where the generic estimate counts a few FLOPs.
  double ns_per_output() const override { return gelu != GeluForm::kNone || silu ? 1.0 : 0.0; }
};

class ElementwiseKernel : public FastKernel {
 public:
  explicit ElementwiseKernel(const ElementwisePlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override {
    if (p_.gelu != GeluForm::kNone || p_.silu) return run_unary(a);
    ElementwiseJob job;
    KILN_TRY(job.prepare(CpuKernelArgs{a.node, a.inputs, a.outputs}));
    for_each_chunk(job.total < kMinParallel ? 1 : a.ctx.threads, job.total, kChunk,
                   [&](int64_t b, int64_t len) { job.run(b, b + len); });
    return Status::ok();
  }

 private:
  Status run_unary(const FastRunArgs& a) {
    const float* x = a.inputs[p_.unary_input].as<float>();
    float* y = a.outputs[0].as<float>();
    const int64_t n = a.outputs[0].numel();
    for_each_chunk(a.ctx.threads, n, kChunk, [&](int64_t b, int64_t len) {
      if (p_.silu) silu(x + b, y + b, len);
      else if (p_.gelu == GeluForm::kErf) gelu_erf(x + b, y + b, len);
      else gelu_tanh(x + b, y + b, len);
    });
    return Status::ok();
  }
  const ElementwisePlan& p_;
};

std::unique_ptr<FastKernel> ElementwisePlan::instance() const { return std::make_unique<ElementwiseKernel>(*this); }

// The program of `node` evaluated at GELU's probe points (runtime/ops/gelu_reference.h) into
// ys, when it is a function of one float tensor x (input *x_input) and constant scalars, of
// x's shape; false otherwise.
bool probe_unary(const Plan& plan, const PlanNode& node, size_t* x_input, std::vector<float>* ys_out) {
  int x = -1;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const int32_t t = node.inputs[i];
    if (t < 0 || plan.tensors[t].dtype != DType::kFloat32) return false;
    if (plan.tensors[t].kind == TensorKind::kConstant && shape_numel(plan.tensors[t].shape) == 1) continue;
    if (x >= 0) return false;
    x = static_cast<int>(i);
  }
  const int32_t y = node.outputs[0];
  if (x < 0 || plan.tensors[y].dtype != DType::kFloat32 || !same_shape_everywhere(plan, node.inputs[x], y))
    return false;
  constexpr int kPoints = kGeluProbePoints;
  std::vector<float> xs(kPoints), ys(kPoints);
  for (int i = 0; i < kPoints; ++i) xs[i] = gelu_probe_point(i);
  std::vector<TensorView> in;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const PlanTensor& t = plan.tensors[node.inputs[i]];
    if (static_cast<int>(i) == x) in.push_back(TensorView{DType::kFloat32, {kPoints}, xs.data()});
    else in.push_back(TensorView{DType::kFloat32, t.shape, const_cast<uint8_t*>(plan.weight_data(t))});
  }
  std::vector<TensorView> out{TensorView{DType::kFloat32, {kPoints}, ys.data()}};
  ElementwiseJob job;
  if (!job.prepare(CpuKernelArgs{node, in, out}).is_ok()) return false;
  job.run(0, kPoints);
  *x_input = static_cast<size_t>(x);
  *ys_out = std::move(ys);
  return true;
}

Status prepare_elementwise(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  if (node.outputs.size() != 1 || node.outputs[0] < 0) return Status::ok();
  auto p = std::make_shared<ElementwisePlan>();
  std::vector<float> ys;
  if (probe_unary(plan, node, &p->unary_input, &ys)) {
    p->gelu = gelu_form_of(ys.data());
    p->silu = p->gelu == GeluForm::kNone && silu_form_of(ys.data());
  }
  const int32_t y = node.outputs[0];
  p->layout_blind = true;
  for (int32_t t : node.inputs) {
    const bool scalar = t >= 0 && shape_numel(plan.tensors[t].shape) == 1;
    const bool same = t >= 0 && same_shape_everywhere(plan, t, y);
    p->follows.push_back(same);
    p->layout_blind &= t >= 0 && (same || scalar);
  }
  *out = std::move(p);
  return Status::ok();
}

}  // namespace

void register_fast_elementwise_fast(FastRegistry& r) { r.add("Elementwise", prepare_elementwise); }

}  // namespace kiln
