// Conv and ConvTranspose (float32) on oneDNN's convolution / deconvolution primitives, with
// kiln's fused epilogue (linear_epilogue.h) as post-ops: bias as the primitive's bias, the
// residual as a binary add before or after the activation's eltwise post-ops.
//
// Weights are reordered once per plan into the layout the primitive picks for the plan's
// shapes; activations arrive plain or channels-last (fast_cpu.h) and are reordered only where
// the primitive wants another layout.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/dnnl_conv_geom.h"
#include "runtime/backends/cpu/dnnl_epilogue.h"
#include "runtime/backends/cpu/dnnl_packed.h"
#include "runtime/backends/linear_check.h"
#include "runtime/ops/channels_last.h"

namespace kiln {
namespace {

using namespace dnnl_conv;

using dnnl::memory;
using namespace dnnl_util;

memory::desc any_weights_md(const memory::desc& onnx) { return memory::desc(onnx.dims(), dt::f32, tag::any); }

class ConvPlan : public FastNodePlan {
 public:
  bool transpose = false;
  // oneDNN has a Winograd convolution for this node on this CPU: used at the shapes where it
  // pays (algorithm_at).
  bool winograd = false;
  dnnl::algorithm packed_for = dnnl::algorithm::convolution_direct;  // at the plan's shapes
  linear::Epilogue ep;
  bool has_bias = false;
  PackedWeights weights;   // reordered once for the primitive at the plan's shapes
  ConstOperand onnx_weights;  // as the plan holds them: the source of other layouts' copies
  ConstOperand bias;       // a constant bias, or empty (read from the run's input)

  LayoutUse input_use(size_t i) const override {
    return i == 0 || i == linear::kResidualInput ? LayoutUse::kAny : LayoutUse::kPlain;
  }
  LayoutUse output_use(size_t) const override { return LayoutUse::kAny; }
  const char* name() const override {
    if (transpose) return "onednn:deconvolution";
    return packed_for == dnnl::algorithm::convolution_winograd ? "onednn:convolution(winograd)" : "onednn:convolution";
  }
  dnnl::algorithm algorithm_at(const Shape& x, const Shape& y) const;
  std::unique_ptr<FastKernel> instance() const override;
};

// The primitive descriptor for geometry `g` with src/dst descriptors as given ("any" lets
// oneDNN pick) and post-ops `po`.
dnnl::primitive_desc make_pd(const ConvPlan& p, dnnl::algorithm algorithm, const memory::desc& src,
                             const memory::desc& wei, const memory::desc& dst, const ConvGeom& g,
                             const dnnl::post_ops& po, int64_t M) {
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const memory::desc bias_md = p.has_bias ? memory::desc({M}, dt::f32, tag::x) : memory::desc();
  const auto prop = dnnl::prop_kind::forward_inference;
  if (p.transpose) {
    dnnl::deconvolution_forward::desc d(prop, dnnl::algorithm::deconvolution_direct, src, wei, bias_md, dst, g.strides,
                                        g.dil, g.pad_l, g.pad_r);
    return dnnl::deconvolution_forward::primitive_desc(d, attr, engine());
  }
  dnnl::convolution_forward::desc d(prop, algorithm, src, wei, bias_md, dst, g.strides, g.dil, g.pad_l, g.pad_r);
  return dnnl::convolution_forward::primitive_desc(d, attr, engine());
}

dnnl::post_ops activation_only(const linear::Epilogue& ep) {
  dnnl::post_ops po;
  append_activation(po, ep);
  return po;
}

memory::desc any_md(const Shape& s) { return memory::desc(dims_of(s), dt::f32, tag::any); }

// oneDNN's Winograd convolutions (F(2x2,3x3) and F(4x4,3x3), AVX-512 only) ran ResNet-18's 3x3
// stride-1 layers 1.2-1.8x faster than its direct (brgconv) ones on 2 cores, the reorders to and
// from their blocked layouts included, but slower with 32 channels, on maps of a few pixels, and
// at par on 7x7 maps at batch 1 (perf/results/2026-12-08-cpu-winograd.md). Their sums round
// differently from a direct convolution's (tests/ops/cpu_fast_linear_test.cpp bounds by how much),
// as TensorRT's and cuDNN's Winograd kernels do.
bool winograd_geometry(const Shape& x, const Shape& w, const ConvGeom& g) {
  if (x.size() != 4 || g.groups != 1 || w[2] != 3 || w[3] != 3) return false;
  for (size_t i = 0; i < 2; ++i)
    if (g.strides[i] != 1 || g.dil[i] != 0) return false;
  return true;
}

// KILN_CPU_WINOGRAD=0 keeps every convolution direct (read when a plan's kernels are prepared):
// for results that round as before, and to time the difference.
bool winograd_allowed() {
  const char* e = std::getenv("KILN_CPU_WINOGRAD");
  return !(e && std::string(e) == "0");
}

bool winograd_pays(const Shape& x, const Shape& y) {
  constexpr int64_t kMinChannels = 64, kMinOutputPositions = 100;
  return x[1] >= kMinChannels && y[1] >= kMinChannels && y[0] * y[2] * y[3] >= kMinOutputPositions;
}

dnnl::algorithm ConvPlan::algorithm_at(const Shape& x, const Shape& y) const {
  return winograd && winograd_pays(x, y) ? dnnl::algorithm::convolution_winograd
                                         : dnnl::algorithm::convolution_direct;
}

class ConvKernel : public FastKernel {
 public:
  explicit ConvKernel(const ConvPlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override;

 private:
  struct Entry {
    dnnl::primitive prim;
    BoundArgs args;
    memory::desc src_md, dst_md, scratch_md;
    // The weights in this team size's layout, when it is not the packed one (see build()).
    PackedWeights weights;
    bool src_reorder = false, dst_reorder = false;
    BoundReorder src_r, dst_r;
    FusedEpilogue epilogue;
  };
  Status build(const FastRunArgs& a, Entry* e);
  const ConvPlan& p_;
  ShapeCache<Entry> cache_;
};

std::unique_ptr<FastKernel> ConvPlan::instance() const { return std::make_unique<ConvKernel>(*this); }

Status ConvKernel::build(const FastRunArgs& a, Entry* e) {
  const Shape& x = a.inputs[0].shape;
  const Shape& y = a.outputs[0].shape;
  ConvGeom g;
  if (!conv_geom(a.node, x, a.inputs[1].shape, p_.transpose, &g))
    return invalid_plan("convolution attributes oneDNN cannot express at this shape");
  Status packed = Status::ok();
  const dnnl::algorithm algorithm = p_.algorithm_at(x, y);
  const Status built = creation_guard("convolution", [&] {
    // The layouts the primitive prefers at this shape and team size, asked with the activation
    // only (a residual's descriptor must name a layout). The weights were packed for the
    // default team size and the plan's shapes; forcing that layout on another team size can
    // leave oneDNN only its reference convolution (two contexts sharing 16 cores ran ResNet-18
    // at 0.4 inferences/s that way), and another shape may take the other algorithm, so an
    // entry whose preferred layout differs gets its own copy, once.
    const dnnl::primitive_desc probe = make_pd(p_, algorithm, any_md(x), any_weights_md(p_.onnx_weights.md),
                                               any_md(y), g, activation_only(p_.ep), y[1]);
    e->src_md = probe.query_md(dnnl::query::src_md);
    e->dst_md = probe.query_md(dnnl::query::dst_md);
    const memory::desc preferred = probe.query_md(dnnl::query::weights_md);
    if (preferred != p_.weights.md) {
      // From the plan's own copy: oneDNN does not reorder out of Winograd's weight format.
      packed = e->weights.pack(p_.onnx_weights.md, p_.onnx_weights.data, preferred);
      if (!packed) return;
    }
    const memory::desc& wmd = e->weights.empty() ? p_.weights.md : e->weights.md;
    const dnnl::primitive_desc pd = e->epilogue.choose(p_.ep, e->dst_md, [&](const dnnl::post_ops& po) {
      return make_pd(p_, algorithm, e->src_md, wmd, e->dst_md, g, po, y[1]);
    });
    e->scratch_md = pd.query_md(dnnl::query::scratchpad_md);
    e->prim = dnnl::primitive(pd);
    const memory::desc user_src = layout_md(x, dt::f32, a.in_layout[0]);
    const memory::desc user_dst = layout_md(y, dt::f32, a.out_layout[0]);
    e->src_reorder = user_src != e->src_md;
    e->dst_reorder = user_dst != e->dst_md;
    if (e->src_reorder) e->src_r.init(user_src, e->src_md);
    if (e->dst_reorder) e->dst_r.init(e->dst_md, user_dst);
    e->args.add(DNNL_ARG_SRC, e->src_md);
    e->args.add(DNNL_ARG_WEIGHTS, wmd);
    e->args.add(DNNL_ARG_DST, e->dst_md);
    e->args.add(DNNL_ARG_SCRATCHPAD, e->scratch_md);
    if (p_.has_bias) e->args.add(DNNL_ARG_BIAS, memory::desc({y[1]}, dt::f32, tag::x));
    if (p_.ep.residual != linear::kResidualNone)
      e->epilogue.set_residual_md(
          layout_md(a.inputs[linear::kResidualInput].shape, dt::f32, a.in_layout[linear::kResidualInput]), &e->args);
  });
  KILN_TRY(packed.with_context("convolution: the weights in this team size's layout"));
  return built;
}

Status ConvKernel::run(const FastRunArgs& a) {
  Entry* e = nullptr;
  KILN_TRY(cache_.get(a, &e, [&](Entry& n) { return build(a, &n); }));
  FastRunContext& c = a.ctx;
  dnnl::stream& s = c.stream();
  const void* src = a.inputs[0].data;
  if (e->src_reorder) {
    void* tmp = c.scratch_for(1, e->src_md);
    e->src_r.run(s, src, tmp);
    src = tmp;
  }
  void* dst = e->dst_reorder ? c.scratch_for(2, e->dst_md) : a.outputs[0].data;
  e->args.set(DNNL_ARG_SRC, src);
  e->args.set(DNNL_ARG_WEIGHTS, e->weights.empty() ? p_.weights.data.get() : e->weights.data.get());
  e->args.set(DNNL_ARG_DST, dst);
  e->args.set(DNNL_ARG_SCRATCHPAD, c.scratch_for(kScratchpadSlot, e->scratch_md));
  if (p_.has_bias) e->args.set(DNNL_ARG_BIAS, p_.bias.data ? p_.bias.data : a.inputs[linear::kBiasInput].data);
  if (p_.ep.residual != linear::kResidualNone)
    e->epilogue.before(c, a.inputs[linear::kResidualInput].data, dst, e->args);
  e->args.execute(e->prim, s);
  e->epilogue.after(c, dst);
  if (e->dst_reorder) e->dst_r.run(s, dst, a.outputs[0].data);
  s.wait();
  return Status::ok();
}

Status prepare_conv(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  const bool transpose = node.op == "ConvTranspose";
  auto p = std::make_shared<ConvPlan>();
  p->transpose = transpose;
  if (!operands_are(plan, node, DType::kFloat32)) return Status::ok();
  // Channels-last convolutions (runtime/ops/channels_last.h) are written for the GPU's tensor
  // cores; on the cpu the reference kernel runs them.
  if (is_channels_last(node.attrs)) return Status::ok();
  if (node.inputs.size() < 2 || !is_constant(plan, node.inputs[1])) return Status::ok();
  std::vector<const Shape*> shapes;
  for (int32_t t : node.inputs) shapes.push_back(t >= 0 ? &plan.tensors[t].shape : nullptr);
  const Shape& y = plan.tensors[node.outputs[0]].shape;
  KILN_TRY(linear::check_linear_shapes(node.op, node.name, node.attrs, shapes, y));
  KILN_TRY(linear::read_epilogue(node.attrs, &p->ep));
  const Shape& x = plan.tensors[node.inputs[0]].shape;
  const PlanTensor& w = plan.tensors[node.inputs[1]];
  if (x.size() < 3 || x.size() > 5) return Status::ok();
  ConvGeom g;
  if (!conv_geom(node, x, w.shape, transpose, &g)) return Status::ok();
  p->has_bias = has_operand(node, linear::kBiasInput);
  if (p->has_bias && is_constant(plan, node.inputs[linear::kBiasInput]))
    p->bias = ConstOperand::of(plan, node.inputs[linear::kBiasInput]);
  // oneDNN 2.6's deconvolution pads output channels to its 16-wide blocks, and with fewer it ran
  // 30x slower than kiln's reference loop (PP-OCRv4 det's last layer, 24 -> 1 channels at
  // 640x640: 115-160 ms against 4.9): those stay with the reference.
  constexpr int64_t kMinDeconvOutputChannels = 16;
  if (transpose && y[1] / g.groups < kMinDeconvOutputChannels) return Status::ok();
  const memory::desc wmd = onnx_weights_md(w.shape, g.groups, transpose);
  if (!transpose && winograd_geometry(x, w.shape, g) && winograd_allowed()) {
    try {
      p->winograd = !is_reference_impl(make_pd(*p, dnnl::algorithm::convolution_winograd, any_md(x),
                                               any_weights_md(wmd), any_md(y), g, activation_only(p->ep), y[1]));
    } catch (const dnnl::error&) {
      // none on this CPU
    }
  }
  dnnl::primitive_desc pd;
  try {
    p->packed_for = p->algorithm_at(x, y);
    pd = make_pd(*p, p->packed_for, any_md(x), any_weights_md(wmd), any_md(y), g, activation_only(p->ep), y[1]);
  } catch (const dnnl::error&) {
    return Status::ok();  // a configuration oneDNN lacks: the reference kernel runs it
  }
  p->onnx_weights.data = plan.weight_data(w);
  p->onnx_weights.md = wmd;
  KILN_TRY(p->weights.pack(wmd, p->onnx_weights.data, pd.query_md(dnnl::query::weights_md)));
  *out = std::move(p);
  return Status::ok();
}

}  // namespace

void register_dnnl_conv_fast(FastRegistry& r) {
  r.add("Conv", prepare_conv);
  r.add("ConvTranspose", prepare_conv);
}

}  // namespace kiln
