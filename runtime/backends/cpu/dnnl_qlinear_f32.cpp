// QLinearConv and QLinearMatMul on oneDNN's float32 convolution / matmul over the integer
// values: the route for CPUs whose int8 kernels do not accumulate exactly (AVX2 without VNNI,
// where oneDNN 2.6 pairs u8 x s8 products in saturating int16), and for any CPU with
// KILN_CPU_INT8_VIA_F32=1 (tests). oneDNN 2.6's float32 kernels take neither zero points nor
// output scales, so kiln widens the activations itself, the scales are a post-op, and kiln's
// loop requantizes: on AVX2, ResNet-18 INT8 then takes 1.1x kiln FP32's time, where the
// reference kernels took 20x (perf/results/2026-12-06-cpu-int8-via-f32.md).
//
// The arithmetic, against the reference (quantize.cpp, write_out):
//  - weights: the int8 values as float32 (exact), reordered once per plan;
//  - activations: float(x) - x_zp per run, in a threaded loop (exact: |x - x_zp| <= 255);
//  - accumulators: float32 sums of integer products, exact while every partial sum stays below
//    2^24 in magnitude, which K x 255 x 128 < 2^24 guarantees (K = input channels / groups x
//    kernel size, up to 514) and real layers mostly keep far beyond that (products of mixed
//    sign cancel). Past 2^24 each addition rounds to float's 24 bits: a relative error around
//    2^-24 per addition, in oneDNN's order, where one quantization step is about 1/255 of the
//    accumulator's range, so it moves only elements sitting at a rounding boundary, by one step;
//  - float(acc + bias): oneDNN adds float(bias) (exact below 2^24) to float(acc): the
//    reference's float(acc + bias) while both are exact;
//  - * scales: a binary multiply post-op by the scales the reference computes ((sa * sb) / sy,
//    or sa * sb when the fused epilogue divides by sy itself): the same float multiply;
//  - the rest (residual, activation, / sy, rint, + yzp, saturation, or the float output):
//    kiln's loop epilogue (fast_epilogue_loop.h), the reference's float operations bit for bit.
// So outputs are the reference's bit for bit while the accumulators are exact, whatever the
// activation or residual; beyond, at most one quantization step on a handful of elements
// (tests/ops/cpu_fast_quant_test.cpp, within_one_step; the int8 route's contract).
#include <cstring>

#include "runtime/backends/cpu/dnnl_epilogue.h"
#include "runtime/backends/cpu/dnnl_packed.h"
#include "runtime/backends/cpu/dnnl_qlinear.h"
#include "runtime/backends/cpu/fast_loops.h"
#include "runtime/backends/cpu/fast_quantize.h"

namespace kiln {
namespace {

using dnnl::memory;
using namespace dnnl_util;
using namespace dnnl_conv;

// Scratch slots (0 is oneDNN's scratchpad).
constexpr int kSrcSlot = 1, kDstSlot = 2, kDstUserSlot = 4, kSrcUserSlot = 5;  // 3: kQResidualSlot

class F32Plan : public FastNodePlan, public QNode {
 public:
  PackedWeights weights;  // the int8 values as float32, in the primitive's layout
  std::shared_ptr<void> bias_f32, scale_values;
  memory::desc bias_md, scale_md;

  LayoutUse input_use(size_t i) const override { return qnode_input_use(*this, i); }
  LayoutUse output_use(size_t) const override { return conv ? LayoutUse::kAny : LayoutUse::kPlain; }
  const char* name() const override { return conv ? "onednn:int8_convolution_via_f32" : "onednn:int8_matmul_via_f32"; }
  std::unique_ptr<FastKernel> instance() const override;
};

dnnl::primitive_desc make_pd(const F32Plan& p, const memory::desc& src, const memory::desc& wei, const memory::desc& dst,
                             const ConvGeom& g) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::post_ops po;
  po.append_binary(dnnl::algorithm::binary_mul, p.scale_md);
  attr.set_post_ops(po);
  const memory::desc bias = p.bias_f32 ? p.bias_md : memory::desc();
  if (!p.conv) return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, bias, dst), attr, engine());
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, wei, bias,
                                    dst, g.strides, g.dil, g.pad_l, g.pad_r);
  return dnnl::convolution_forward::primitive_desc(d, attr, engine());
}

memory::desc any_md(const Shape& s) { return memory::desc(dims_of(s), dt::f32, tag::any); }

// A convolution at activation / output shapes x, y with the first src / dst layouts oneDNN has a
// non-reference kernel for: its preference unblocked (the stored activations are never
// blocked), else both channels-last, else both plain (oneDNN's AVX2 kernels take a plain
// few-channel src with a blocked dst, but not with a channels-last one). All reference: the last.
dnnl::primitive_desc conv_pd(const F32Plan& p, const Shape& x, const Shape& y, const memory::desc& wei, const ConvGeom& g) {
  memory::desc src, dst;
  unblocked_layouts(make_pd(p, any_md(x), wei, any_md(y), g), x, y, dt::f32, dt::f32, &src, &dst);
  const memory::desc candidates[][2] = {{src, dst},
                                        {channels_last_md(x, dt::f32), channels_last_md(y, dt::f32)},
                                        {plain_md(x, dt::f32), plain_md(y, dt::f32)}};
  dnnl::primitive_desc pd;
  for (const auto& c : candidates) {
    try {
      pd = make_pd(p, c[0], wei, c[1], g);
    } catch (const dnnl::error&) {
      continue;
    }
    if (!is_reference_impl(pd)) break;
  }
  if (!pd) throw dnnl::error(dnnl_unimplemented, "no float32 convolution");
  return pd;
}

class F32Kernel : public FastKernel {
 public:
  explicit F32Kernel(const F32Plan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override;

 private:
  // user_src / user_dst: the activation and output in their stored layouts, as float32.
  using Entry = QEntry;
  Status build(const FastRunArgs& a, Entry* e);
  const F32Plan& p_;
  ShapeCache<Entry> cache_;
};

std::unique_ptr<FastKernel> F32Plan::instance() const { return std::make_unique<F32Kernel>(*this); }

Status F32Kernel::build(const FastRunArgs& a, Entry* e) {
  const Shape& x = a.inputs[p_.act].shape;
  const Shape& y = a.outputs[0].shape;
  ConvGeom g;
  if (p_.conv && !conv_geom(a.node, x, a.inputs[p_.wei].shape, false, &g))
    return invalid_plan("convolution attributes oneDNN cannot express at this shape");
  return creation_guard(a.node.op, [&] {
    memory::desc src, dst;
    dnnl::primitive_desc pd;
    Shape y_view = y;  // the output as the primitive's dst sees it
    if (p_.conv) {
      pd = conv_pd(p_, x, y, p_.weights.md, g);
      src = pd.query_md(dnnl::query::src_md);
      dst = pd.query_md(dnnl::query::dst_md);
      e->user_src = layout_md(x, dt::f32, a.in_layout[p_.act]);
      e->user_dst = layout_md(y, dt::f32, a.out_layout[0]);
    } else {
      const int64_t K = x.back(), N = y.back(), rows = matmul_rows(x);
      src = plain_md({rows, K}, dt::f32);
      dst = plain_md({rows, N}, dt::f32);
      e->user_src = src;
      e->user_dst = dst;
      y_view = {rows, N};
      pd = make_pd(p_, src, p_.weights.md, dst, g);
    }
    e->src_md = src;
    e->dst_md = dst;
    e->scratch_md = pd.query_md(dnnl::query::scratchpad_md);
    e->prim = dnnl::primitive(pd);
    e->src_reorder = e->user_src != src;
    if (e->src_reorder) e->src_r.init(e->user_src, src);
    e->dst_reorder = e->user_dst != dst;
    if (e->dst_reorder) e->dst_r.init(dst, e->user_dst);
    e->args.add(DNNL_ARG_SRC, src);
    e->args.add(DNNL_ARG_WEIGHTS, p_.weights.md);
    e->args.add(DNNL_ARG_DST, dst);
    e->args.add(DNNL_ARG_SCRATCHPAD, e->scratch_md);
    if (p_.bias_f32) e->args.add(DNNL_ARG_BIAS, p_.bias_md);
    e->args.add(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, p_.scale_md);
    if (p_.has_residual()) e->init_residual(p_, a, y_view, e->user_dst);
  });
}

Status F32Kernel::run(const FastRunArgs& a) {
  Entry* e = nullptr;
  KILN_TRY(cache_.get(a, &e, [&](Entry& n) { return build(a, &n); }));
  FastRunContext& c = a.ctx;
  dnnl::stream& s = c.stream();
  const TensorView& x = a.inputs[p_.act];
  float* xf = static_cast<float*>(c.scratch_for(e->src_reorder ? kSrcUserSlot : kSrcSlot, e->user_src));
  const float zp = static_cast<float>(p_.x_zp);
  // (float(x) - zp) * 1: exact, as the integers it widens are.
  for_each_chunk(c.threads, x.numel(), 16384, [&](int64_t b, int64_t len) {
    if (x.dtype == DType::kUInt8) dequantize_u8(x.as<uint8_t>() + b, len, 1.f, zp, xf + b);
    else dequantize_s8(x.as<int8_t>() + b, len, 1.f, zp, xf + b);
  });
  void* src = xf;
  if (e->src_reorder) {
    src = c.scratch_for(kSrcSlot, e->src_md);
    e->src_r.run(s, xf, src);
  }
  void* dst = c.scratch_for(kDstSlot, e->dst_md);
  e->args.set(DNNL_ARG_SRC, src);
  e->args.set(DNNL_ARG_WEIGHTS, p_.weights.data.get());
  e->args.set(DNNL_ARG_DST, dst);
  e->args.set(DNNL_ARG_SCRATCHPAD, c.scratch_for(kScratchpadSlot, e->scratch_md));
  if (p_.bias_f32) e->args.set(DNNL_ARG_BIAS, p_.bias_f32.get());
  e->args.set(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, p_.scale_values.get());
  e->args.execute(e->prim, s);
  const float* r = static_cast<const float*>(dst);
  if (e->dst_reorder) {
    void* to = c.scratch_for(kDstUserSlot, e->user_dst);
    e->dst_r.run(s, dst, to);
    r = static_cast<const float*>(to);
  }
  const void* res = p_.has_residual() ? e->residual(a) : nullptr;
  s.wait();
  qlinear_loop_epilogue(p_, a, r, res);
  return Status::ok();
}

// A new float32 buffer of n values converted from `from`.
template <typename T>
std::shared_ptr<void> widened(const T* from, size_t n) {
  std::shared_ptr<void> b = aligned_buffer(n * sizeof(float));
  float* f = static_cast<float*>(b.get());
  for (size_t i = 0; i < n; ++i) f[i] = static_cast<float>(from[i]);
  return b;
}

}  // namespace

Status prepare_qlinear_f32(const Plan& plan, const PlanNode& node, const QNode& q, std::shared_ptr<const FastNodePlan>* out) {
  auto p = std::make_shared<F32Plan>();
  static_cast<QNode&>(*p) = q;
  const PlanTensor& act = plan.tensors[node.inputs[p->act]];
  const PlanTensor& w = plan.tensors[node.inputs[p->wei]];
  const PlanTensor& y = plan.tensors[node.outputs[0]];
  // The scales broadcast over a convolution's dst along dim 1, over a matmul's along columns.
  Shape sdims(p->conv ? act.shape.size() : 2, 1);
  sdims[1] = static_cast<int64_t>(p->scales.size());
  p->scale_md = plain_md(sdims, dt::f32);
  p->scale_values = aligned_buffer(p->scales.size() * sizeof(float));
  std::memcpy(p->scale_values.get(), p->scales.data(), p->scales.size() * sizeof(float));
  if (p->bias >= 0) {
    const PlanTensor& b = plan.tensors[p->bias];
    p->bias_f32 = widened(reinterpret_cast<const int32_t*>(plan.weight_data(b)), static_cast<size_t>(p->channels));
    p->bias_md = p->conv ? plain_md({p->channels}, dt::f32) : plain_md({1, p->channels}, dt::f32);
  }
  memory::desc wmd, src, dst;
  ConvGeom g;
  if (p->conv) {
    if (!conv_geom(node, act.shape, w.shape, false, &g) || (g.groups != 1 && w.shape[0] % g.groups)) return Status::ok();
    wmd = onnx_weights_md(w.shape, g.groups, false, dt::f32);
  } else {
    wmd = plain_md(w.shape, dt::f32);
    src = plain_md({matmul_rows(act.shape), act.shape.back()}, dt::f32);
    dst = plain_md({matmul_rows(act.shape), w.shape[1]}, dt::f32);
  }
  // The weights' layout is the one the primitive takes at the layouts its runs will ask for.
  const memory::desc wany(wmd.dims(), dt::f32, tag::any);
  dnnl::primitive_desc pd;
  try {
    pd = p->conv ? conv_pd(*p, act.shape, y.shape, wany, g) : make_pd(*p, src, wany, dst, g);
  } catch (const dnnl::error&) {
    return Status::ok();
  }
  // oneDNN's reference implementations are slow and not what the tests cover: kiln's reference
  // kernel runs the node.
  if (is_reference_impl(pd)) return Status::ok();
  const std::shared_ptr<void> wf = widened(reinterpret_cast<const int8_t*>(plan.weight_data(w)), shape_numel(w.shape));
  KILN_TRY(p->weights.pack(wmd, wf.get(), pd.query_md(dnnl::query::weights_md)));
  *out = std::move(p);
  return Status::ok();
}

}  // namespace kiln
