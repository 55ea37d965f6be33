// Gemm and MatMul (float32, batched and broadcast) on oneDNN's matmul primitive, with kiln's
// fused epilogue as the primitive's bias and post-ops. Constant right-hand operands (weights)
// are reordered once per plan into the layout the primitive picks; transposed operands (Gemm's
// transA/transB) are read through strides, never copied.
#include <algorithm>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/dnnl_epilogue.h"
#include "runtime/backends/cpu/dnnl_packed.h"
#include "runtime/backends/linear_check.h"

namespace kiln {
namespace {

using dnnl::memory;
using namespace dnnl_util;

// One matmul problem: dst[batch.., M, N] = src[.., M, K] x wei[.., K, N] (+ bias, broadcast).
struct Problem {
  memory::desc src, wei, dst, bias;
};

memory::desc strided(const memory::dims& dims, const memory::dims& strides) { return memory::desc(dims, dt::f32, strides); }

memory::dims row_major_strides(const memory::dims& d) {
  memory::dims s(d.size(), 1);
  for (int i = static_cast<int>(d.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * d[i + 1];
  return s;
}

// Pads `s` with leading 1s to rank `r`.
memory::dims pad_rank(const Shape& s, size_t r) {
  memory::dims d(r - s.size(), 1);
  d.insert(d.end(), s.begin(), s.end());
  return d;
}

struct MatmulPlan : public FastNodePlan {
  bool gemm = false;
  bool flatten = false;  // MatMul: A's batch rows folded into M (2-D problem)
  linear::Epilogue ep;
  float alpha = 1.f;     // Gemm: output scale
  bool has_bias = false;
  ConstOperand bias;     // constant bias as the plan holds it
  PackedWeights scaled_bias;  // Gemm: a constant C scaled for beta/alpha
  PackedWeights weights;      // constant B, reordered (empty: B read from the run's input)
  ConstOperand plain_b;       // constant B as the plan holds it (fallback for other shapes)

  const char* name() const override { return "onednn:matmul"; }
  std::unique_ptr<FastKernel> instance() const override;

  // The problem at these operand shapes (B's descriptor is plain/strided).
  Problem problem(const PlanNode& n, const Shape& a, const Shape& b, const Shape* bias, const Shape& y) const;
};

Problem MatmulPlan::problem(const PlanNode& n, const Shape& a, const Shape& b, const Shape* bias_shape,
                            const Shape& y) const {
  Problem p;
  if (gemm) {
    const bool ta = n.attrs.get_int("transA", 0) != 0, tb = n.attrs.get_int("transB", 0) != 0;
    const int64_t M = y[0], N = y[1], K = ta ? a[0] : a[1];
    p.src = strided({M, K}, ta ? memory::dims{1, M} : memory::dims{K, 1});
    p.wei = strided({K, N}, tb ? memory::dims{1, K} : memory::dims{N, 1});
    p.dst = strided({M, N}, {N, 1});
    if (bias_shape) {
      const Shape& c = *bias_shape;
      const int64_t cm = c.size() == 2 ? c[0] : 1, cn = c.empty() ? 1 : c.back();
      p.bias = strided({cm, cn}, {cn, 1});
    }
    return p;
  }
  Shape as = a, bs = b;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  const Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  Shape batch;
  (void)broadcast_shapes(ab, bb, &batch);  // checked by check_linear_shapes
  auto bias_dims = [&](size_t r) {
    memory::dims d(r, 1);
    if (bias_shape && !bias_shape->empty()) {
      d[r - 1] = bias_shape->back();
      if (bias_shape->size() >= 2) d[r - 2] = (*bias_shape)[bias_shape->size() - 2];
    }
    return d;
  };
  if (flatten) {
    const int64_t rows = shape_numel(ab) * M;
    p.src = strided({rows, K}, {K, 1});
    p.wei = strided({K, N}, {N, 1});
    p.dst = strided({rows, N}, {N, 1});
    if (bias_shape) p.bias = strided(bias_dims(2), row_major_strides(bias_dims(2)));
    return p;
  }
  const size_t r = batch.size() + 2;
  memory::dims ad = pad_rank(as, r), bd = pad_rank(bs, r), dd(batch.begin(), batch.end());
  dd.push_back(M);
  dd.push_back(N);
  p.src = strided(ad, row_major_strides(ad));
  p.wei = strided(bd, row_major_strides(bd));
  p.dst = strided(dd, row_major_strides(dd));
  if (bias_shape) p.bias = strided(bias_dims(r), row_major_strides(bias_dims(r)));
  (void)y;
  return p;
}

dnnl::primitive_desc make_pd(const MatmulPlan& mp, const Problem& p, const memory::desc& wei, const dnnl::post_ops& po) {
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (mp.alpha != 1.f) attr.set_output_scales(0, {mp.alpha});
  dnnl::matmul::desc d = mp.has_bias ? dnnl::matmul::desc(p.src, wei, p.bias, p.dst) : dnnl::matmul::desc(p.src, wei, p.dst);
  return dnnl::matmul::primitive_desc(d, attr, engine());
}

// Chooses the fused epilogue's form and builds the descriptor with weights `wei`.
dnnl::primitive_desc make_pd(const MatmulPlan& mp, const Problem& p, const memory::desc& wei, FusedEpilogue* ep) {
  return ep->choose(mp.ep, p.dst, [&](const dnnl::post_ops& po) { return make_pd(mp, p, wei, po); });
}

class MatmulKernel : public FastKernel {
 public:
  explicit MatmulKernel(const MatmulPlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override;

 private:
  struct Entry {
    dnnl::primitive prim;
    BoundArgs args;
    FusedEpilogue epilogue;
    Problem prob;
    bool packed = false;  // runs on the plan's packed weights
    memory::desc scratch_md;
  };
  const MatmulPlan& p_;
  ShapeCache<Entry> cache_;
};

std::unique_ptr<FastKernel> MatmulPlan::instance() const { return std::make_unique<MatmulKernel>(*this); }

Status MatmulKernel::run(const FastRunArgs& a) {
  const bool res = p_.ep.residual != linear::kResidualNone;
  Entry* e = nullptr;
  KILN_TRY(cache_.get(a, &e, [&](Entry& n) {
    const Shape* bias = a.has_input(linear::kBiasInput) ? &a.inputs[linear::kBiasInput].shape : nullptr;
    n.prob = p_.problem(a.node, a.inputs[0].shape, a.inputs[1].shape, bias, a.outputs[0].shape);
    return creation_guard("matmul", [&] {
      dnnl::primitive_desc pd;
      n.packed = false;
      if (!p_.weights.empty()) {
        try {
          pd = make_pd(p_, n.prob, p_.weights.md, &n.epilogue);
          n.packed = true;
        } catch (const dnnl::error&) {
          // Another shape than the plan's may not take the packed layout: read B as stored.
        }
      }
      if (!n.packed) pd = make_pd(p_, n.prob, n.prob.wei, &n.epilogue);
      n.scratch_md = pd.query_md(dnnl::query::scratchpad_md);
      n.prim = dnnl::primitive(pd);
      n.args.add(DNNL_ARG_SRC, n.prob.src);
      n.args.add(DNNL_ARG_WEIGHTS, n.packed ? p_.weights.md : n.prob.wei);
      n.args.add(DNNL_ARG_DST, n.prob.dst);
      n.args.add(DNNL_ARG_SCRATCHPAD, n.scratch_md);
      if (p_.has_bias) n.args.add(DNNL_ARG_BIAS, n.prob.bias);
      if (res) n.epilogue.set_residual_md(n.prob.dst, &n.args);
    });
  }));
  FastRunContext& c = a.ctx;
  e->args.set(DNNL_ARG_SRC, a.inputs[0].data);
  e->args.set(DNNL_ARG_WEIGHTS, e->packed ? p_.weights.data.get() : a.inputs[1].data);
  e->args.set(DNNL_ARG_DST, a.outputs[0].data);
  e->args.set(DNNL_ARG_SCRATCHPAD, c.scratch_for(kScratchpadSlot, e->scratch_md));
  if (p_.has_bias) {
    const void* b = !p_.scaled_bias.empty() ? p_.scaled_bias.data.get()
                    : p_.bias.data          ? p_.bias.data
                                            : a.inputs[linear::kBiasInput].data;
    e->args.set(DNNL_ARG_BIAS, b);
  }
  if (res) e->epilogue.before(c, a.inputs[linear::kResidualInput].data, a.outputs[0].data, e->args);
  e->args.execute(e->prim, c.stream());
  e->epilogue.after(c, a.outputs[0].data);
  c.stream().wait();
  return Status::ok();
}

Status prepare_matmul(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  if (!operands_are(plan, node, DType::kFloat32) || node.inputs.size() < 2 || node.outputs.size() != 1)
    return Status::ok();
  std::vector<const Shape*> shapes;
  for (int32_t t : node.inputs) shapes.push_back(t >= 0 ? &plan.tensors[t].shape : nullptr);
  const Shape& y = plan.tensors[node.outputs[0]].shape;
  KILN_TRY(linear::check_linear_shapes(node.op, node.name, node.attrs, shapes, y));
  auto p = std::make_shared<MatmulPlan>();
  p->gemm = node.op == "Gemm";
  KILN_TRY(linear::read_epilogue(node.attrs, &p->ep));
  const Shape& a = plan.tensors[node.inputs[0]].shape;
  const Shape& b = plan.tensors[node.inputs[1]].shape;
  p->has_bias = has_operand(node, linear::kBiasInput);
  const bool bias_const = p->has_bias && is_constant(plan, node.inputs[linear::kBiasInput]);
  const Shape* bias_shape = p->has_bias ? &plan.tensors[node.inputs[linear::kBiasInput]].shape : nullptr;
  if (p->gemm) {
    p->alpha = node.attrs.get_float("alpha", 1.f);
    const float beta = node.attrs.get_float("beta", 1.f);
    if (p->has_bias && (beta != 1.f || p->alpha != 1.f)) {
      // oneDNN scales (acc + bias) by the output scale: a constant C becomes beta * C / alpha.
      if (!bias_const || p->alpha == 0.f) return Status::ok();
      const PlanTensor& c = plan.tensors[node.inputs[linear::kBiasInput]];
      const float* cv = reinterpret_cast<const float*>(plan.weight_data(c));
      std::shared_ptr<void> buf = aligned_buffer(c.bytes());
      float* dst = static_cast<float*>(buf.get());
      for (int64_t i = 0; i < shape_numel(c.shape); ++i) dst[i] = beta * cv[i] / p->alpha;
      p->scaled_bias.adopt(plain_md(c.shape, dt::f32), buf);
    }
  } else if (b.size() <= 2 && a.size() >= 2) {
    // Weights shared by every batch item: one tall problem, unless the bias varies by row.
    const bool row_bias = bias_shape && bias_shape->size() >= 2 && (*bias_shape)[bias_shape->size() - 2] != 1;
    p->flatten = !row_bias || shape_numel(Shape(a.begin(), a.end() - 2)) == 1;
  }
  if (bias_const) p->bias = ConstOperand::of(plan, node.inputs[linear::kBiasInput]);
  const Problem prob = p->problem(node, a, b, bias_shape, y);
  if (is_constant(plan, node.inputs[1])) {
    p->plain_b = ConstOperand::of(plan, node.inputs[1]);
    dnnl::primitive_desc pd;
    FusedEpilogue ep;
    try {
      pd = make_pd(*p, prob, memory::desc(prob.wei.dims(), dt::f32, tag::any), &ep);
    } catch (const dnnl::error&) {
      return Status::ok();
    }
    KILN_TRY(p->weights.pack(prob.wei, p->plain_b.data, pd.query_md(dnnl::query::weights_md)));
  } else {
    FusedEpilogue ep;
    try {
      (void)make_pd(*p, prob, prob.wei, &ep);
    } catch (const dnnl::error&) {
      return Status::ok();
    }
  }
  *out = std::move(p);
  return Status::ok();
}

}  // namespace

void register_dnnl_matmul_fast(FastRegistry& r) {
  r.add("Gemm", prepare_matmul);
  r.add("MatMul", prepare_matmul);
}

}  // namespace kiln
