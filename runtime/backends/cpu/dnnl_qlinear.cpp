// QLinearConv and QLinearMatMul (int8/uint8 activations, int8 weights with zero point 0, the
// ONNX requantization and kiln's fused integer epilogue, quantize_geometry.h) on oneDNN's int8
// convolution and matmul (VNNI / AMX kernels), weights reordered once per plan. Where int8
// products do not accumulate exactly (no VNNI) the float32 route runs instead
// (dnnl_qlinear_f32.cpp; the routes' shared reading of the node: dnnl_qlinear.h).
//
// The arithmetic, against the reference (quantize.cpp, write_out):
//  - accumulators: exact int32, the source zero point handled by oneDNN's compensation;
//  - float(acc + bias): oneDNN adds float(acc) + float(bias), equal while |acc|, |bias| and
//    their sum stay below 2^24;
//  - output scales are computed as the reference does ((sa * sb) / sy, or sa * sb when the
//    fused epilogue divides by sy itself) and applied as oneDNN output scales;
//  - rint(v) + yzp: an eltwise round post-op, then the zero point added by a linear post-op
//    (oneDNN's own destination zero point would round v + yzp, which differs at ties);
//  - the fused epilogue's r / sy: a binary divide post-op by sy (not a multiply by 1 / sy);
//    a float residual R joins as a binary add, an int8 residual as a sum post-op with its
//    scale and zero point ((R - zp) * scale, possibly fused into one multiply-add by the
//    kernel: one rounding less than the reference);
//  - Relu, LeakyRelu and Clip are exact; the other activations are oneDNN's approximations.
// So outputs equal the reference's except where an activation's approximation or a fused
// multiply-add moves a value across a rounding boundary: at most one quantization step, on a
// handful of elements (tests: CpuFastQuant.*). A float output with an int8 residual has no
// oneDNN form: oneDNN writes float(acc + bias) * sa * sb and kiln's own loop does the rest.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/dnnl_epilogue.h"
#include "runtime/backends/cpu/dnnl_packed.h"
#include "runtime/backends/cpu/dnnl_qlinear.h"
#include "runtime/backends/cpu/fast_epilogue_loop.h"
#include "runtime/backends/cpu/fast_loops.h"
#include "runtime/ops/channels_last.h"

namespace kiln {

using dnnl::memory;
using namespace dnnl_util;
using namespace dnnl_conv;

namespace {

enum class ResidualJoin { kNone, kBinary, kSum, kLoop };

class QPlan : public FastNodePlan, public QNode {
 public:
  ResidualJoin res = ResidualJoin::kNone;
  ConstOperand bias_op;
  PackedWeights weights;
  memory::desc sy_md;  // the scalar sy for the binary divide post-op
  std::shared_ptr<void> sy_value;

  LayoutUse input_use(size_t i) const override { return qnode_input_use(*this, i); }
  LayoutUse output_use(size_t) const override { return conv ? LayoutUse::kAny : LayoutUse::kPlain; }
  const char* name() const override { return conv ? "onednn:int8_convolution" : "onednn:int8_matmul"; }
  std::unique_ptr<FastKernel> instance() const override;

  // What oneDNN computes: post-ops and destination type.
  dnnl::primitive_attr attr(int ndims, const memory::desc& dst_md) const;
  dt dst_type() const { return res == ResidualJoin::kLoop ? dt::f32 : dtype_of(y_dt); }
};

dnnl::primitive_attr QPlan::attr(int ndims, const memory::desc& dst_md) const {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  // Per output channel: dim 1 of a convolution's dst, the last dim of a matmul's.
  const int mask = scales.size() > 1 ? (conv ? 1 << 1 : 1 << (ndims - 1)) : 0;
  a.set_output_scales(mask, scales);
  a.set_zero_points(DNNL_ARG_SRC, 0, {x_zp});
  dnnl::post_ops po;
  const bool int_out = y_dt != DType::kFloat32;
  if (res != ResidualJoin::kLoop) {
    auto residual = [&] {
      if (res == ResidualJoin::kBinary) po.append_binary(dnnl::algorithm::binary_add, dst_md);
      else if (res == ResidualJoin::kSum)
        po.append_sum(res_scale, static_cast<int32_t>(res_zp), dtype_of(r_dt));
    };
    if (ep.residual == linear::kResidualBeforeActivation) residual();
    append_activation(po, ep);
    if (ep.residual == linear::kResidualAfterActivation) residual();
    if (int_out && fused) po.append_binary(dnnl::algorithm::binary_div, sy_md);
    if (int_out) {
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_round, 0.f, 0.f);
      if (yzp != 0.f) po.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, 1.f, yzp);
    }
  }
  a.set_post_ops(po);
  return a;
}

// Index of the binary post-ops' arguments.
int residual_post_op_index(const QPlan& p) {
  return p.ep.residual == linear::kResidualBeforeActivation ? 0 : activation_post_ops(p.ep);
}
int divide_post_op_index(const QPlan& p) {
  return activation_post_ops(p.ep) + (p.res == ResidualJoin::kBinary || p.res == ResidualJoin::kSum ? 1 : 0);
}

// Whether the fused epilogue's r / sy runs as a binary divide post-op.
bool divides(const QPlan& p) { return p.fused && p.y_dt != DType::kFloat32 && p.res != ResidualJoin::kLoop; }

class QKernel : public FastKernel {
 public:
  explicit QKernel(const QPlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override;

 private:
  using Entry = QEntry;
  Status build(const FastRunArgs& a, Entry* e);
  const QPlan& p_;
  ShapeCache<Entry> cache_;
};

std::unique_ptr<FastKernel> QPlan::instance() const { return std::make_unique<QKernel>(*this); }

dnnl::primitive_desc make_pd(const QPlan& p, const memory::desc& src, const memory::desc& wei, const memory::desc& dst,
                             const ConvGeom& g) {
  const dnnl::primitive_attr attr = p.attr(dst.data.ndims, with_type(dst, dt::f32));
  const memory::desc bias = p.bias >= 0 ? p.bias_op.md : memory::desc();
  if (!p.conv) return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, bias, dst), attr, engine());
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, wei, bias,
                                    dst, g.strides, g.dil, g.pad_l, g.pad_r);
  dnnl::convolution_forward::primitive_desc pd(d, attr, engine());
  // Implementations of oneDNN 2.6 that were wrong on a Sapphire Rapids host: the AMX 1x1 int8
  // convolution wrote past the end of its destination (a 2x72x6x6 output: 864 bytes; KILN_CPU_GUARD
  // found it), and the VNNI brgemm 1x1 with an s8 source (weights with s8s8 compensation) gave
  // wrong, run-to-run different outputs with 16 threads (CpuFastQuant.ConvChainWithResidual-
  // MatchesReference, perf/results/2026-12-06-fp16nhwc.md): take the next one.
  auto avoided = [&](const char* impl) {
    return std::strcmp(impl, "jit_1x1:avx512_core_amx_int8") == 0 ||
           (p.x_dt == DType::kInt8 && std::strcmp(impl, "brgconv_1x1:avx512_core_vnni") == 0);
  };
  while (avoided(pd.impl_info_str()))
    if (!pd.next_impl()) throw dnnl::error(dnnl_unimplemented, "only oneDNN int8 convolutions that kiln avoids fit");
  return pd;
}

Status QKernel::build(const FastRunArgs& a, Entry* e) {
  const Shape& x = a.inputs[p_.act].shape;
  const Shape& y = a.outputs[0].shape;
  const dt xt = dtype_of(p_.x_dt), yt = p_.dst_type();
  ConvGeom g;
  if (p_.conv && !conv_geom(a.node, x, a.inputs[p_.wei].shape, false, &g))
    return invalid_plan("convolution attributes oneDNN cannot express at this shape");
  return creation_guard(a.node.op, [&] {
    memory::desc src, dst;
    Shape y_view = y;  // the output as the primitive's dst sees it
    if (p_.conv) {
      // The layouts the primitive prefers at this shape (the fused residual's descriptor is
      // given the channels-last layout it will have).
      const dnnl::primitive_desc probe =
          make_pd(p_, memory::desc(dims_of(x), xt, tag::any), p_.weights.md, memory::desc(dims_of(y), yt, tag::any), g);
      unblocked_layouts(probe, x, y, xt, yt, &src, &dst);
      e->user_src = layout_md(x, xt, a.in_layout[0]);
      e->user_dst = layout_md(y, yt, a.out_layout[0]);
    } else {
      const int64_t K = x.back(), N = y.back(), rows = matmul_rows(x);
      src = plain_md({rows, K}, xt);
      dst = plain_md({rows, N}, yt);
      e->user_src = src;
      e->user_dst = dst;
      y_view = {rows, N};
    }
    const dnnl::primitive_desc pd = make_pd(p_, src, p_.weights.md, dst, g);
    e->src_md = src;
    e->dst_md = dst;
    e->scratch_md = pd.query_md(dnnl::query::scratchpad_md);
    e->prim = dnnl::primitive(pd);
    e->src_reorder = e->user_src != src;
    if (e->src_reorder) e->src_r.init(e->user_src, src);
    e->args.add(DNNL_ARG_SRC, src);
    e->args.add(DNNL_ARG_WEIGHTS, p_.weights.md);
    e->args.add(DNNL_ARG_DST, dst);
    e->args.add(DNNL_ARG_SCRATCHPAD, e->scratch_md);
    if (p_.bias >= 0) e->args.add(DNNL_ARG_BIAS, p_.bias_op.md);
    if (divides(p_)) e->args.add(DNNL_ARG_ATTR_MULTIPLE_POST_OP(divide_post_op_index(p_)) | DNNL_ARG_SRC_1, p_.sy_md);
    // kLoop: the primitive writes float32, which the loop reads in the output's own layout.
    if (p_.res == ResidualJoin::kLoop) e->user_dst = with_type(e->user_dst, dt::f32);
    e->dst_reorder = e->user_dst != dst;
    if (e->dst_reorder) e->dst_r.init(dst, e->user_dst);
    if (p_.res != ResidualJoin::kNone) {
      e->init_residual(p_, a, y_view, p_.res == ResidualJoin::kLoop ? e->user_dst : dst);
      if (p_.res == ResidualJoin::kBinary)
        e->args.add(DNNL_ARG_ATTR_MULTIPLE_POST_OP(residual_post_op_index(p_)) | DNNL_ARG_SRC_1, e->res_want);
    }
  });
}

Status QKernel::run(const FastRunArgs& a) {
  Entry* e = nullptr;
  KILN_TRY(cache_.get(a, &e, [&](Entry& n) { return build(a, &n); }));
  FastRunContext& c = a.ctx;
  dnnl::stream& s = c.stream();
  const void* src = a.inputs[p_.act].data;
  if (e->src_reorder) {
    void* tmp = c.scratch_for(1, e->src_md);
    e->src_r.run(s, src, tmp);
    src = tmp;
  }
  const bool loop = p_.res == ResidualJoin::kLoop;
  void* dst = e->dst_reorder || loop ? c.scratch_for(2, e->dst_md) : a.outputs[0].data;
  e->args.set(DNNL_ARG_SRC, src);
  e->args.set(DNNL_ARG_WEIGHTS, p_.weights.data.get());
  e->args.set(DNNL_ARG_DST, dst);
  e->args.set(DNNL_ARG_SCRATCHPAD, c.scratch_for(kScratchpadSlot, e->scratch_md));
  if (p_.bias >= 0) e->args.set(DNNL_ARG_BIAS, p_.bias_op.data);
  const void* res = nullptr;
  if (p_.res != ResidualJoin::kNone) {
    res = e->residual(a);
    if (p_.res == ResidualJoin::kBinary)
      e->args.set(DNNL_ARG_ATTR_MULTIPLE_POST_OP(residual_post_op_index(p_)) | DNNL_ARG_SRC_1, res);
    else if (p_.res == ResidualJoin::kSum && dst != res)
      c.copy(dst, res, e->dst_md.get_size());  // the sum post-op adds to dst
  }
  if (divides(p_)) e->args.set(DNNL_ARG_ATTR_MULTIPLE_POST_OP(divide_post_op_index(p_)) | DNNL_ARG_SRC_1, p_.sy_value.get());
  e->args.execute(e->prim, s);
  if (loop) {
    const float* r = static_cast<const float*>(dst);
    if (e->dst_reorder) {
      void* tmp = c.scratch_for(4, e->user_dst);
      e->dst_r.run(s, dst, tmp);
      r = static_cast<const float*>(tmp);
    }
    qlinear_loop_epilogue(p_, a, r, res);
  } else if (e->dst_reorder) {
    e->dst_r.run(s, dst, a.outputs[0].data);
  }
  s.wait();
  return Status::ok();
}

// A scalar float of a constant operand (nullopt-like: false when absent or not constant).
bool const_float(const Plan& plan, const PlanNode& n, int i, float* v, bool* is_vector = nullptr) {
  if (i < 0 || !has_operand(n, i) || !is_constant(plan, n.inputs[i])) return false;
  const PlanTensor& t = plan.tensors[n.inputs[i]];
  if (t.dtype != DType::kFloat32 || shape_numel(t.shape) < 1) return false;
  *v = reinterpret_cast<const float*>(plan.weight_data(t))[0];
  if (is_vector) *is_vector = shape_numel(t.shape) != 1;
  return true;
}

// A constant zero point as an integer (absent: 0); false when not a constant scalar.
bool const_zero_point(const Plan& plan, const PlanNode& n, int i, int32_t* v) {
  *v = 0;
  if (i < 0 || !has_operand(n, i)) return true;
  if (!is_constant(plan, n.inputs[i])) return false;
  const PlanTensor& t = plan.tensors[n.inputs[i]];
  if (shape_numel(t.shape) != 1) return false;
  const uint8_t* d = plan.weight_data(t);
  if (t.dtype == DType::kUInt8) *v = d[0];
  else if (t.dtype == DType::kInt8) *v = static_cast<int8_t>(d[0]);
  else return false;
  return true;
}

}  // namespace

Status read_qnode(const Plan& plan, const PlanNode& node, QNode* p, bool* ok) {
  *ok = false;
  p->conv = node.op == "QLinearConv";
  p->in = qgemm_inputs(node.op);
  const QGemmInputs& in = p->in;
  if (p->conv) {
    p->act = in.b, p->act_zp = in.zb, p->act_scale = in.sb;
    p->wei = in.a, p->wei_zp = in.za, p->wei_scale = in.sa;
  } else {
    p->act = in.a, p->act_zp = in.za, p->act_scale = in.sa;
    p->wei = in.b, p->wei_zp = in.zb, p->wei_scale = in.sb;
  }
  if (node.outputs.size() != 1 || !has_operand(node, p->act) || !has_operand(node, p->wei)) return Status::ok();
  const PlanTensor& act = plan.tensors[node.inputs[p->act]];
  const PlanTensor& w = plan.tensors[node.inputs[p->wei]];
  const PlanTensor& y = plan.tensors[node.outputs[0]];
  // oneDNN's int8 kernels take u8/s8 activations and s8 weights with zero point 0.
  p->x_dt = act.dtype;
  p->y_dt = y.dtype;
  if ((act.dtype != DType::kUInt8 && act.dtype != DType::kInt8) || w.dtype != DType::kInt8 ||
      !is_constant(plan, node.inputs[p->wei]) ||
      (y.dtype != DType::kUInt8 && y.dtype != DType::kInt8 && y.dtype != DType::kFloat32))
    return Status::ok();
  if (!p->conv) {
    // matmul: a [.., M, K] times 2-D weights [K, N].
    if (w.shape.size() != 2 || act.shape.size() < 1 || act.shape.back() != w.shape[0]) return Status::ok();
  } else if (act.shape.size() < 3 || act.shape.size() > 5) {
    return Status::ok();
  }
  // Every operand of the requantization must be a plan constant: the scales fold into
  // per-channel constants once per plan. The weights' zero points must all be 0.
  if (has_operand(node, p->wei_zp)) {
    if (!is_constant(plan, node.inputs[p->wei_zp])) return Status::ok();
    const PlanTensor& z = plan.tensors[node.inputs[p->wei_zp]];
    const uint8_t* d = plan.weight_data(z);
    for (uint64_t i = 0; i < z.bytes(); ++i)
      if (d[i]) return Status::ok();
  }
  if (!const_zero_point(plan, node, p->act_zp, &p->x_zp)) return Status::ok();
  float sx = 0.f;
  bool sx_vec = false;
  if (!const_float(plan, node, p->act_scale, &sx, &sx_vec) || sx_vec) return Status::ok();
  if (!has_operand(node, p->wei_scale) || !is_constant(plan, node.inputs[p->wei_scale])) return Status::ok();
  const PlanTensor& sw_t = plan.tensors[node.inputs[p->wei_scale]];
  const float* sw = reinterpret_cast<const float*>(plan.weight_data(sw_t));
  const int64_t channels = p->conv ? w.shape[0] : w.shape[1];
  p->channels = channels;
  const int64_t nsw = shape_numel(sw_t.shape);
  if (sw_t.dtype != DType::kFloat32 || (nsw != 1 && nsw != channels)) return Status::ok();
  if (y.dtype != DType::kFloat32) {
    if (!const_float(plan, node, in.sy, &p->sy)) return Status::ok();
    int32_t z = 0;
    if (!const_zero_point(plan, node, in.yzp, &z)) return Status::ok();
    p->yzp = static_cast<float>(z);
  }
  p->fused = has_qlinear_epilogue(node, y.dtype);
  if (node.attrs.get_int(kAttrBiasColumns, 0) != 0 && p->conv) return Status::ok();
  // Channels-last convolutions (an OpenCL plan's, runtime/ops/channels_last.h) run the reference.
  if (is_channels_last(node.attrs)) return Status::ok();
  if (!p->conv && has_operand(node, in.bias) && node.attrs.get_int(kAttrBiasColumns, 0) == 0) return Status::ok();
  if (p->fused) KILN_TRY(linear::read_epilogue(node.attrs, &p->ep));
  // Output scales, computed as the reference does (a float output's are sa * sb: fused).
  for (int64_t c = 0; c < (nsw == 1 ? 1 : channels); ++c) {
    const float sa = p->conv ? sw[c] : sx, sb = p->conv ? sx : sw[c];
    p->scales.push_back(p->fused ? sa * sb : (sa * sb) / p->sy);
  }
  if (has_operand(node, in.bias)) {
    const int32_t bt = node.inputs[in.bias];
    if (!is_constant(plan, bt) || plan.tensors[bt].dtype != DType::kInt32 || shape_numel(plan.tensors[bt].shape) != channels)
      return Status::ok();
    p->bias = bt;
  }
  if (p->has_residual()) {
    if (!has_operand(node, kQResidualInput)) return invalid_plan(node.op + " '" + node.name + "': fused residual input is missing");
    p->r_dt = plan.tensors[node.inputs[kQResidualInput]].dtype;
    if (p->r_dt == DType::kInt8 || p->r_dt == DType::kUInt8) {
      int32_t rz = 0;
      if (!const_float(plan, node, kQResidualScaleInput, &p->res_scale) || !const_zero_point(plan, node, kQResidualZeroPointInput, &rz))
        return Status::ok();
      p->res_zp = static_cast<float>(rz);
    } else if (p->r_dt != DType::kFloat32) {
      return Status::ok();
    }
  }
  *ok = true;
  return Status::ok();
}

bool int8_via_f32() {
  if (!int8_accumulates_exactly()) return true;
  const char* e = std::getenv("KILN_CPU_INT8_VIA_F32");
  return e && *e && std::string(e) != "0";
}

void qlinear_loop_epilogue(const QNode& q, const FastRunArgs& a, const float* r, const void* res) {
  // r's scales include 1 / sy unless the fused epilogue divides by sy (quantize.cpp, write_out).
  const TensorView& y = a.outputs[0];
  LoopEpilogue e;
  e.ep = q.ep;
  e.res_type = q.r_dt;
  e.res_zp = q.res_zp;
  e.res_scale = q.res_scale;
  e.out_type = y.dtype;
  e.sy = q.fused ? q.sy : 1.f;
  e.yzp = q.yzp;
  for_each_chunk(a.ctx.threads, y.numel(), 16384, [&](int64_t b, int64_t len) { loop_epilogue_range(e, r, res, y.data, b, len); });
}

void QEntry::init_residual(const QNode& q, const FastRunArgs& a, const Shape& y_view, const memory::desc& layout) {
  const TensorView& r = a.inputs[kQResidualInput];
  const dt rt = dtype_of(r.dtype);
  res_from = q.conv ? layout_md(r.shape, rt, a.in_layout[kQResidualInput]) : plain_md(y_view, rt);
  res_want = with_type(layout, rt);
  res_reorder = res_from != res_want;
  if (res_reorder) res_r.init(res_from, res_want);
}

const void* QEntry::residual(const FastRunArgs& a) {
  const void* res = a.inputs[kQResidualInput].data;
  if (!res_reorder) return res;
  void* to = a.ctx.scratch_for(kQResidualSlot, res_want);
  res_r.run(a.ctx.stream(), res, to);
  return to;
}

memory::desc with_type(const memory::desc& md, dt t) {
  const memory::dims dims = md.dims();
  const auto& st = md.data.format_desc.blocking.strides;
  return memory::desc(dims, t, memory::dims(st, st + dims.size()));
}

void unblocked_layouts(const dnnl::primitive_desc& probe, const Shape& x, const Shape& y, dt xt, dt yt, memory::desc* src,
                       memory::desc* dst) {
  *src = probe.query_md(dnnl::query::src_md);
  *dst = probe.query_md(dnnl::query::dst_md);
  if (src->data.format_desc.blocking.inner_nblks) *src = channels_last_md(x, xt);
  if (dst->data.format_desc.blocking.inner_nblks) *dst = channels_last_md(y, yt);
}

namespace {

Status prepare_qlinear_int8(const Plan& plan, const PlanNode& node, const QNode& q, std::shared_ptr<const FastNodePlan>* out) {
  auto p = std::make_shared<QPlan>();
  static_cast<QNode&>(*p) = q;
  const PlanTensor& act = plan.tensors[node.inputs[p->act]];
  const PlanTensor& w = plan.tensors[node.inputs[p->wei]];
  const PlanTensor& y = plan.tensors[node.outputs[0]];
  if (p->bias >= 0) {
    p->bias_op = ConstOperand::of(plan, p->bias);
    p->bias_op.md = p->conv ? plain_md({p->channels}, dt::s32) : plain_md({1, p->channels}, dt::s32);
  }
  if (p->has_residual()) {
    if (p->r_dt == DType::kFloat32) p->res = ResidualJoin::kBinary;
    // The sum post-op reads R in dst's memory: only for an int8 output of R's size.
    else p->res = y.dtype == DType::kFloat32 ? ResidualJoin::kLoop : ResidualJoin::kSum;
  }
  p->sy_md = plain_md(Shape(p->conv ? act.shape.size() : 2, 1), dt::f32);
  p->sy_value = aligned_buffer(sizeof(float));
  *static_cast<float*>(p->sy_value.get()) = p->sy;
  // Weights: the constant, reordered for the primitive at the plan's shapes.
  memory::desc wmd, src, dst;
  ConvGeom g;
  const dt xt = dtype_of(act.dtype), yt = p->dst_type();
  if (p->conv) {
    if (!conv_geom(node, act.shape, w.shape, false, &g) || (g.groups != 1 && w.shape[0] % g.groups)) return Status::ok();
    wmd = onnx_weights_md(w.shape, g.groups, false, dt::s8);
    src = memory::desc(dims_of(act.shape), xt, tag::any);
    dst = memory::desc(dims_of(y.shape), yt, tag::any);
  } else {
    wmd = plain_md(w.shape, dt::s8);
    src = plain_md({matmul_rows(act.shape), act.shape.back()}, xt);
    dst = plain_md({matmul_rows(act.shape), w.shape[1]}, yt);
  }
  dnnl::primitive_desc pd;
  const memory::desc wany(wmd.dims(), dt::s8, tag::any);
  try {
    pd = make_pd(*p, src, wany, dst, g);
  } catch (const dnnl::error&) {
    if (p->res == ResidualJoin::kNone) return Status::ok();
  }
  // A residual post-op oneDNN has no optimized kernel for (a full-tensor binary add on strided
  // convolutions) would pull in its reference kernel: kiln's loop adds the residual instead.
  if (p->res != ResidualJoin::kNone && (!pd || is_reference_impl(pd))) {
    p->res = ResidualJoin::kLoop;
    try {
      pd = make_pd(*p, src, wany, p->conv ? memory::desc(dst.dims(), dt::f32, tag::any) : with_type(dst, dt::f32), g);
    } catch (const dnnl::error&) {
      return Status::ok();
    }
  }
  KILN_TRY(p->weights.pack(wmd, plan.weight_data(w), pd.query_md(dnnl::query::weights_md)));
  *out = std::move(p);
  return Status::ok();
}

Status prepare_qlinear(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  QNode q;
  bool ok = false;
  KILN_TRY(read_qnode(plan, node, &q, &ok));
  if (!ok) return Status::ok();
  return int8_via_f32() ? prepare_qlinear_f32(plan, node, q, out) : prepare_qlinear_int8(plan, node, q, out);
}

}  // namespace

void register_dnnl_qlinear_fast(FastRegistry& r) {
  r.add("QLinearConv", prepare_qlinear);
  r.add("QLinearMatMul", prepare_qlinear);
}

}  // namespace kiln
