// Softmax and LayerNormalization (float32, plain layout) on oneDNN's softmax and
// layer-normalization primitives: both compute ONNX's formulas (max-subtracted exponentials;
// mean and biased variance over the normalized dims). LogSoftmax stays with the reference
// kernel: oneDNN's polynomial log is off by up to ~4e-6 absolute (log(1) = 1.4e-6). LayerNormalization runs
// here when only Y is asked for and its scale/bias hold one value per normalized element.
#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/dnnl_packed.h"
#include "runtime/backends/normalization_geometry.h"

namespace kiln {
namespace {

using dnnl::memory;
using namespace dnnl_util;

class SoftmaxPlan : public FastNodePlan {
 public:
  const char* name() const override { return "onednn:softmax"; }
  std::unique_ptr<FastKernel> instance() const override;
};

class SoftmaxKernel : public FastKernel {
 public:
  explicit SoftmaxKernel(const SoftmaxPlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override {
    Entry* e = nullptr;
    KILN_TRY(cache_.get(a, &e, [&](Entry& n) {
      const normgeo::Rows r = normgeo::softmax_rows(a.inputs[0].shape, a.node.attrs);
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
  *out = std::make_shared<SoftmaxPlan>();
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
