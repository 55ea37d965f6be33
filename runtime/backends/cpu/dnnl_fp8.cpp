// Fp8Conv and Fp8MatMul (FP8 weights, FP8 or float32 activations; quantize_fp8_geometry.h) on
// oneDNN's float32 convolution / matmul: the FP8 weights are decoded to float32 once per plan
// and reordered for the primitive, the activations decoded per run; the primitive computes the
// accumulators and kiln's loop applies the reference's epilogue (acc * (s_row * s_col) + bias,
// residual, activation, / y_scale, the ONNX float8 cast) to them in the reference's order. The
// accumulators are float32 sums in oneDNN's order rather than ascending k, so results can differ
// from the reference by float rounding (one FP8 step at most where a value sits on a boundary).
#include <algorithm>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/dnnl_conv_geom.h"
#include "runtime/backends/cpu/dnnl_packed.h"
#include "runtime/backends/quantize_fp8_geometry.h"
#include "runtime/core/float8.h"

namespace kiln {
namespace {

using dnnl::memory;
using namespace dnnl_util;
using namespace dnnl_conv;

class Fp8Plan : public FastNodePlan {
 public:
  bool conv = true;
  PackedWeights weights;
  const char* name() const override { return conv ? "onednn:fp8_convolution" : "onednn:fp8_matmul"; }
  std::unique_ptr<FastKernel> instance() const override;
};

// Decodes (or copies) `t` to float32 at `out`.
void decode(const TensorView& t, float* out, int threads) {
  const int64_t n = t.numel();
  if (t.dtype == DType::kFloat32) {
    std::copy(t.as<float>(), t.as<float>() + n, out);
    return;
  }
  const float* table = float8_decode_table(t.dtype);
  const uint8_t* c = t.as<uint8_t>();
  const int team = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n / 32768)));
#pragma omp parallel for num_threads(team) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = table[c[i]];
}

class Fp8Kernel : public FastKernel {
 public:
  explicit Fp8Kernel(const Fp8Plan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override {
    std::vector<Fp8Operand> ops;
    for (const TensorView& t : a.inputs) ops.push_back({t.data ? t.dtype : DType::kUndefined, t.shape});
    Fp8Linear f;
    KILN_TRY(fp8_linear_setup(a.node, ops, {a.outputs[0].dtype, a.outputs[0].shape}, &f));
    const TensorView& x = a.inputs[0];
    const TensorView& y = a.outputs[0];
    Entry* e = nullptr;
    KILN_TRY(cache_.get(a, &e, [&](Entry& n) {
      return creation_guard(a.node.op, [&] {
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        if (p_.conv) {
          ConvGeom g;
          if (!conv_geom(a.node, x.shape, a.inputs[2].shape, false, &g)) throw dnnl::error(dnnl_invalid_arguments, "geometry");
          n.src = plain_md(x.shape, dt::f32);
          n.dst = plain_md(y.shape, dt::f32);
          dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                            n.src, p_.weights.md, n.dst, g.strides, g.dil, g.pad_l, g.pad_r);
          dnnl::convolution_forward::primitive_desc pd(d, attr, engine());
          n.scratch = pd.scratchpad_desc();
          n.prim = dnnl::convolution_forward(pd);
        } else {
          const int64_t K = x.shape.back(), N = y.shape.back(), rows = x.numel() / K;
          n.src = plain_md({rows, K}, dt::f32);
          n.dst = plain_md({rows, N}, dt::f32);
          dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(n.src, p_.weights.md, n.dst), attr, engine());
          n.scratch = pd.scratchpad_desc();
          n.prim = dnnl::matmul(pd);
        }
      });
    }));
    FastRunContext& c = a.ctx;
    float* xs = static_cast<float*>(c.scratch(1, x.numel() * sizeof(float)));
    decode(x, xs, c.threads);
    float* acc = static_cast<float*>(c.scratch(2, y.numel() * sizeof(float)));
    e->prim.execute(c.stream(), {{DNNL_ARG_SRC, memory(e->src, engine(), xs)},
                                 {DNNL_ARG_WEIGHTS, p_.weights.memory()},
                                 {DNNL_ARG_DST, memory(e->dst, engine(), acc)},
                                 {DNNL_ARG_SCRATCHPAD, c.scratch_memory(kScratchpadSlot, e->scratch)}});
    c.stream().wait();
    epilogue(a, f, acc);
    return Status::ok();
  }

 private:
  struct Entry {
    dnnl::primitive prim;
    memory::desc src, dst, scratch;
  };

  // The reference's epilogue (quantize_fp8.cpp) over the accumulators, in its order.
  void epilogue(const FastRunArgs& a, const Fp8Linear& f, const float* acc) const {
    const TensorView& y = a.outputs[0];
    const float* sa = a.inputs[f.sa].as<float>();
    const float* sb = a.inputs[f.sb].as<float>();
    const float sy = *a.inputs[Fp8Linear::kYScale].as<float>();
    const float* bias = f.has_bias ? a.inputs[Fp8Linear::kBias].as<float>() : nullptr;
    const TensorView* r = f.ep.residual != linear::kResidualNone ? &a.inputs[Fp8Linear::kResidual] : nullptr;
    const float* rtable = r && f.kr > 0 ? float8_decode_table(r->dtype) : nullptr;
    const float rscale = r && f.kr > 0 ? *a.inputs[Fp8Linear::kResidualScale].as<float>() : 1.f;
    const int64_t n = y.numel();
    // conv: element (img, m, p) of [N, M, P]; matmul: (row, n) of [rows, N].
    const int64_t inner = p_.conv ? f.g.N : y.shape.back();
    const int64_t M = p_.conv ? f.g.M * f.g.groups : 1;
    const int team = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(a.ctx.threads, n / 16384)));
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = p_.conv ? (i / inner) % M : 0, col = p_.conv ? 0 : i % inner;
      const float mult = sa[f.sa_vec ? row : 0] * sb[f.sb_vec ? col : 0];
      const float add = bias ? bias[f.bias_per_row ? row : col] : 0.f;
      float v = acc[i] * mult + add;
      float rv = 0.f;
      if (r) rv = rtable ? rtable[r->as<uint8_t>()[i]] * rscale : r->as<float>()[i];
      if (f.ep.residual == linear::kResidualBeforeActivation) v += rv;
      v = linear::apply_activation(f.ep.act, v, f.ep.act_alpha, f.ep.act_beta);
      if (f.ep.residual == linear::kResidualAfterActivation) v += rv;
      v /= sy;
      if (f.ky == 0) y.as<float>()[i] = v;
      else y.as<uint8_t>()[i] = float_to_float8(y.dtype, v, f.saturate);
    }
  }

  const Fp8Plan& p_;
  ShapeCache<Entry> cache_;
};

std::unique_ptr<FastKernel> Fp8Plan::instance() const { return std::make_unique<Fp8Kernel>(*this); }

Status prepare_fp8(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  std::vector<Fp8Operand> ops;
  for (int32_t t : node.inputs) ops.push_back({t >= 0 ? plan.tensors[t].dtype : DType::kUndefined, t >= 0 ? plan.tensors[t].shape : Shape{}});
  if (node.outputs.size() != 1) return Status::ok();
  const PlanTensor& y = plan.tensors[node.outputs[0]];
  Fp8Linear f;
  if (!fp8_linear_setup(node, ops, {y.dtype, y.shape}, &f).is_ok() || !is_constant(plan, node.inputs[2])) return Status::ok();
  if (f.ky == kFp8Half || f.kr == kFp8Half) return Status::ok();  // float16 data: the reference kernel widens it
  if (f.g.channels_last) return Status::ok();  // an OpenCL plan's layout (runtime/ops/channels_last.h)
  const PlanTensor& w = plan.tensors[node.inputs[2]];
  const Shape& x = plan.tensors[node.inputs[0]].shape;
  auto p = std::make_shared<Fp8Plan>();
  p->conv = f.conv;
  if (p->conv && (x.size() < 3 || x.size() > 5)) return Status::ok();
  if (!p->conv && w.shape.size() != 2) return Status::ok();
  // The weights decoded once (unscaled: the scales apply to the accumulators).
  std::vector<float> wf(static_cast<size_t>(shape_numel(w.shape)));
  const float* table = float8_decode_table(w.dtype);
  for (size_t i = 0; i < wf.size(); ++i) wf[i] = table[plan.weight_data(w)[i]];
  memory::desc wmd, src, dst;
  dnnl::primitive_desc pd;
  try {
    if (p->conv) {
      ConvGeom g;
      if (!conv_geom(node, x, w.shape, false, &g)) return Status::ok();
      wmd = onnx_weights_md(w.shape, g.groups, false);
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                        plain_md(x, dt::f32), memory::desc(wmd.dims(), dt::f32, tag::any),
                                        plain_md(y.shape, dt::f32), g.strides, g.dil, g.pad_l, g.pad_r);
      pd = dnnl::convolution_forward::primitive_desc(d, engine());
    } else {
      const int64_t K = x.back(), N = w.shape[1], rows = shape_numel(x) / K;
      wmd = plain_md(w.shape, dt::f32);
      pd = dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(plain_md({rows, K}, dt::f32), memory::desc(wmd.dims(), dt::f32, tag::any), plain_md({rows, N}, dt::f32)),
          engine());
    }
  } catch (const dnnl::error&) {
    return Status::ok();
  }
  KILN_TRY(p->weights.pack(wmd, wf.data(), pd.query_md(dnnl::query::weights_md)));
  *out = std::move(p);
  return Status::ok();
}

}  // namespace

void register_dnnl_fp8_fast(FastRegistry& r) {
  r.add("Fp8Conv", prepare_fp8);
  r.add("Fp8MatMul", prepare_fp8);
}

}  // namespace kiln
