// Softmax and LayerNormalization (float32, plain layout) on oneDNN's softmax and
// layer-normalization primitives (a softmax over an axis that is not the innermost on kiln's
// column loop, fast_softmax.h): both compute ONNX's formulas (max-subtracted exponentials;
// mean and biased variance over the normalized dims). LogSoftmax stays with the reference
// kernel: oneDNN's polynomial log is off by up to ~4e-6 absolute (log(1) = 1.4e-6). LayerNormalization runs
// here when only Y is asked for and its scale/bias hold one value per normalized element.
#include <algorithm>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/dnnl_packed.h"
#include "runtime/backends/cpu/fast_loops.h"
#include "runtime/backends/cpu/fast_softmax.h"
#include "runtime/backends/normalization_geometry.h"

namespace kiln {
namespace {

using dnnl::memory;
using namespace dnnl_util;

class SoftmaxPlan : public FastNodePlan {
 public:
  bool columns = false;  // over an axis that is not the innermost, at the plan's shapes
  const char* name() const override { return columns ? "fast:softmax_columns" : "onednn:softmax"; }
  std::unique_ptr<FastKernel> instance() const override;
};

class SoftmaxKernel : public FastKernel {
 public:
  explicit SoftmaxKernel(const SoftmaxPlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override {
    const normgeo::Rows r = normgeo::softmax_rows(a.inputs[0].shape, a.node.attrs);
    if (r.inner > 1) return run_columns(a, r);
    Entry* e = nullptr;
    KILN_TRY(cache_.get(a, &e, [&](Entry& n) {
      n.md = plain_md({r.outer, r.n, r.inner}, dt::f32);
      return creation_guard("softmax", [&] {
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        const auto prop = dnnl::prop_kind::forward_inference;
        dnnl::softmax_forward::primitive_desc pd({prop, n.md, 1}, attr, engine());
        n.scratch_md = pd.scratchpad_desc();
        n.prim = dnnl::softmax_forward(pd);
        n.args.add(DNNL_ARG_SRC, n.md);
        n.args.add(DNNL_ARG_DST, n.md);
        n.args.add(DNNL_ARG_SCRATCHPAD, n.scratch_md);
      });
    }));
    FastRunContext& c = a.ctx;
    e->args.set(DNNL_ARG_SRC, a.inputs[0].data);
    e->args.set(DNNL_ARG_DST, a.outputs[0].data);
    e->args.set(DNNL_ARG_SCRATCHPAD, c.scratch_for(kScratchpadSlot, e->scratch_md));
    e->args.execute(e->prim, c.stream());
    c.stream().wait();
    return Status::ok();
  }

 private:
  // Over an axis that is not the innermost: oneDNN 2.6 has only its reference softmax for that
  // (28 ms for YOLOv8n's DFL head, 1x16x4x2100 over axis 1), kiln's column loop instead.
  static Status run_columns(const FastRunArgs& a, const normgeo::Rows& r) {
    const float* x = static_cast<const float*>(a.inputs[0].data);
    float* y = static_cast<float*>(a.outputs[0].data);
    for_each_chunk(a.ctx.threads, r.outer * r.inner, 4096, [&](int64_t begin, int64_t count) {
      for (int64_t q = begin; q < begin + count;) {
        const int64_t o = q / r.inner, j = q % r.inner, w = std::min(r.inner - j, begin + count - q);
        softmax_columns(x + o * r.n * r.inner, y + o * r.n * r.inner, r.n, r.inner, j, w);
        q += w;
      }
    });
    return Status::ok();
  }

  struct Entry {
    dnnl::primitive prim;
    BoundArgs args;
    memory::desc md, scratch_md;
  };
  const SoftmaxPlan& p_;
  ShapeCache<Entry> cache_;
};

std::unique_ptr<FastKernel> SoftmaxPlan::instance() const { return std::make_unique<SoftmaxKernel>(*this); }

Status prepare_softmax(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  if (node.inputs.size() != 1 || node.outputs.size() != 1 || !operands_are(plan, node, DType::kFloat32)) return Status::ok();
  if (shape_numel(plan.tensors[node.inputs[0]].shape) == 0) return Status::ok();
  auto p = std::make_shared<SoftmaxPlan>();
  p->columns = normgeo::softmax_rows(plan.tensors[node.inputs[0]].shape, node.attrs).inner > 1;
  *out = std::move(p);
  return Status::ok();
}

class LayerNormPlan : public FastNodePlan {
 public:
  bool has_bias = false;
  const char* name() const override { return "onednn:layer_normalization"; }
  std::unique_ptr<FastKernel> instance() const override;
};

class LayerNormKernel : public FastKernel {
 public:
  explicit LayerNormKernel(const LayerNormPlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override {
    Entry* e = nullptr;
    KILN_TRY(cache_.get(a, &e, [&](Entry& n) {
      const normgeo::Rows r = normgeo::split_at(a.inputs[0].shape, a.node.attrs.get_int("axis", 0));
      if (a.inputs[1].numel() != r.n || (p_.has_bias && a.inputs[2].numel() != r.n))
        return invalid_plan("LayerNormalization: scale/bias do not match the normalized size");
      n.md = plain_md({r.outer, r.n}, dt::f32);
      n.vec = plain_md({r.n}, dt::f32);
      return creation_guard("layer normalization", [&] {
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        auto flags = dnnl::normalization_flags::use_scale;
        if (p_.has_bias) flags = flags | dnnl::normalization_flags::use_shift;
        const float eps = a.node.attrs.get_float("epsilon", 1e-5f);
        dnnl::layer_normalization_forward::primitive_desc pd(
            {dnnl::prop_kind::forward_inference, n.md, eps, flags}, attr, engine());
        n.scratch_md = pd.scratchpad_desc();
        n.prim = dnnl::layer_normalization_forward(pd);
        n.args.add(DNNL_ARG_SRC, n.md);
        n.args.add(DNNL_ARG_DST, n.md);
        n.args.add(DNNL_ARG_SCALE, n.vec);
        n.args.add(DNNL_ARG_SCRATCHPAD, n.scratch_md);
        if (p_.has_bias) n.args.add(DNNL_ARG_SHIFT, n.vec);
      });
    }));
    FastRunContext& c = a.ctx;
    e->args.set(DNNL_ARG_SRC, a.inputs[0].data);
    e->args.set(DNNL_ARG_DST, a.outputs[0].data);
    e->args.set(DNNL_ARG_SCALE, a.inputs[1].data);
    e->args.set(DNNL_ARG_SCRATCHPAD, c.scratch_for(kScratchpadSlot, e->scratch_md));
    if (p_.has_bias) e->args.set(DNNL_ARG_SHIFT, a.inputs[2].data);
    e->args.execute(e->prim, c.stream());
    c.stream().wait();
    return Status::ok();
  }

 private:
  struct Entry {
    dnnl::primitive prim;
    BoundArgs args;
    memory::desc md, vec, scratch_md;
  };
  const LayerNormPlan& p_;
  ShapeCache<Entry> cache_;
};

std::unique_ptr<FastKernel> LayerNormPlan::instance() const { return std::make_unique<LayerNormKernel>(*this); }

Status prepare_layernorm(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  // Mean and InvStdDev outputs (training-style) stay with the reference kernel.
  if (node.outputs.size() != 1 || node.inputs.size() < 2 || node.attrs.get_int("output_mask", 1) != 1 ||
      !operands_are(plan, node, DType::kFloat32))
    return Status::ok();
  const Shape& x = plan.tensors[node.inputs[0]].shape;
  const normgeo::Rows r = normgeo::split_at(x, node.attrs.get_int("axis", 0));
  auto p = std::make_shared<LayerNormPlan>();
  p->has_bias = has_operand(node, 2);
  if (r.n == 0 || r.outer == 0 || shape_numel(plan.tensors[node.inputs[1]].shape) != r.n ||
      (p->has_bias && shape_numel(plan.tensors[node.inputs[2]].shape) != r.n))
    return Status::ok();
  *out = std::move(p);
  return Status::ok();
}

}  // namespace

void register_dnnl_norm_fast(FastRegistry& r) {
  r.add("Softmax", prepare_softmax);
  r.add("LayerNormalization", prepare_layernorm);
}

}  // namespace kiln
