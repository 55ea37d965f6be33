// QLinearConv and QLinearMatMul on oneDNN, two routes over one reading of the node:
//  - dnnl_qlinear.cpp: oneDNN's int8 primitives, where they accumulate exactly (VNNI / AMX);
//  - dnnl_qlinear_f32.cpp: oneDNN's float32 primitives over the integer values, elsewhere
//    (AVX2 without VNNI, where oneDNN 2.6's int8 kernels saturate) or when
//    KILN_CPU_INT8_VIA_F32=1 asks for it.
// Both owe the reference kernels (quantize.cpp, write_out) the same: equal outputs except where
// float rounding moves a value across a rounding boundary, at most one quantization step on a
// handful of elements (tests/ops/cpu_fast_quant_test.cpp).
#pragma once
#include <memory>
#include <vector>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/dnnl_conv_geom.h"
#include "runtime/backends/quantize_geometry.h"
#include "runtime/plan/plan.h"

namespace kiln {

// The node's operands and requantization: every parameter a plan constant, the weights int8
// with zero point 0, the activation u8/s8 with one zero point and scale.
struct QNode {
  bool conv = true;
  QGemmInputs in{};
  // Operand positions: the activation (x / a) and the weights (w / b) with their parameters.
  int act = 0, act_zp = -1, act_scale = -1, wei = 0, wei_zp = -1, wei_scale = -1;
  DType x_dt = DType::kUInt8, y_dt = DType::kInt8, r_dt = DType::kUndefined;
  bool fused = false;  // kiln's fused epilogue (activation, residual, float output)
  linear::Epilogue ep;
  // Per output channel / column, or one: (sa * sb) / sy, or sa * sb when the fused epilogue
  // divides by sy itself, computed as the reference does.
  std::vector<float> scales;
  int32_t x_zp = 0;
  float sy = 1.f, yzp = 0.f, res_scale = 1.f, res_zp = 0.f;
  int32_t bias = -1;  // the int32 bias tensor, or -1
  int64_t channels = 0;

  bool has_residual() const { return ep.residual != linear::kResidualNone; }
};

// Convolutions read their activation and residual in either stored layout, matmuls plain ones.
inline LayoutUse qnode_input_use(const QNode& q, size_t i) {
  if (!q.conv) return LayoutUse::kPlain;
  return i == static_cast<size_t>(q.act) || i == kQResidualInput ? LayoutUse::kAny : LayoutUse::kPlain;
}

// Reads `node` into *q; *ok false when it is outside what the oneDNN routes do (the reference
// kernels run it). Errors are malformed plans.
Status read_qnode(const Plan& plan, const PlanNode& node, QNode* q, bool* ok);

// Whether the float32 route runs int8 layers: no exact int8 accumulation here, or
// KILN_CPU_INT8_VIA_F32=1 (read at each plan's preparation, so tests can switch routes).
bool int8_via_f32();

// The float32 route's prepare (dnnl_qlinear_f32.cpp): leaves *out null where it cannot run `q`.
Status prepare_qlinear_f32(const Plan& plan, const PlanNode& node, const QNode& q, std::shared_ptr<const FastNodePlan>* out);

// kiln's requantization and fused epilogue in a loop (fast_epilogue_loop.h) into the output,
// from r = float(acc + bias) * scales in the output's layout and the residual `res` (or null)
// in the same layout: bit for bit the reference's float operations from r on.
void qlinear_loop_epilogue(const QNode& q, const FastRunArgs& a, const float* r, const void* res);

// What a kernel of either route builds for one run signature: its primitive with bound
// arguments, and the reorders between the tensors' stored layouts and the primitive's.
struct QEntry {
  dnnl::primitive prim;
  BoundArgs args;
  dnnl::memory::desc src_md, dst_md, user_src, user_dst, scratch_md;
  dnnl::memory::desc res_from, res_want;  // the residual as stored, and as the epilogue reads it
  bool src_reorder = false, dst_reorder = false, res_reorder = false;
  BoundReorder src_r, dst_r, res_r;

  // The residual input read in `layout`'s strides (the output as the primitive's dst sees it
  // has shape y_view).
  void init_residual(const QNode& q, const FastRunArgs& a, const Shape& y_view, const dnnl::memory::desc& layout);
  // The residual's data for this run, reordered into scratch slot kQResidualSlot if need be.
  const void* residual(const FastRunArgs& a);
};
constexpr int kQResidualSlot = 3;

// `md`'s layout (strides) with another data type.
dnnl::memory::desc with_type(const dnnl::memory::desc& md, dnnl_util::dt t);
// QLinearMatMul as oneDNN's 2-D matmul: [rows, K] x [K, N] (the weights are 2-D).
inline int64_t matmul_rows(const Shape& a) { return a.size() < 2 ? 1 : shape_numel(a) / a.back(); }
// A convolution's src / dst layouts from a probe's choice: blocked layouts (which a residual
// cannot share by retyping, and the activations' stored layouts never are) become channels-last.
void unblocked_layouts(const dnnl::primitive_desc& probe, const Shape& x, const Shape& y, dnnl_util::dt xt,
                       dnnl_util::dt yt, dnnl::memory::desc* src, dnnl::memory::desc* dst);

}  // namespace kiln
