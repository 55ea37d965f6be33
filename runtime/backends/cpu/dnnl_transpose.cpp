// Transpose on oneDNN's reorder: the input is described with the output's dims and permuted
// strides, and reordered into the plain output (a threaded, vectorized copy; values move
// unchanged, so the result is exactly the reference's).
#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/dnnl_packed.h"

namespace kiln {
namespace {

using dnnl::memory;
using namespace dnnl_util;

class TransposePlan : public FastNodePlan {
 public:
  const char* name() const override { return "onednn:reorder"; }
  std::unique_ptr<FastKernel> instance() const override;
};

class TransposeKernel : public FastKernel {
 public:
  Status run(const FastRunArgs& a) override {
    Entry* e = nullptr;
    KILN_TRY(cache_.get(a, &e, [&](Entry& n) {
      const Shape& x = a.inputs[0].shape;
      const std::vector<int64_t> perm = a.node.attrs.get_ints("perm");
      if (perm.size() != x.size()) return invalid_plan("Transpose: perm does not match the input rank");
      const dt type = dtype_of(a.inputs[0].dtype);
      memory::dims in_strides(x.size(), 1), dims, strides;
      for (int i = static_cast<int>(x.size()) - 2; i >= 0; --i) in_strides[i] = in_strides[i + 1] * x[i + 1];
      for (int64_t p : perm) {
        if (p < 0 || p >= static_cast<int64_t>(x.size())) return invalid_plan("Transpose: bad perm");
        dims.push_back(x[p]);
        strides.push_back(in_strides[p]);
      }
      n.src = memory::desc(dims, type, strides);
      n.dst = plain_md(a.outputs[0].shape, type);
      return creation_guard("transpose", [&] { n.reorder.init(n.src, n.dst); });
    }));
    e->reorder.run(a.ctx.stream(), a.inputs[0].data, a.outputs[0].data);
    a.ctx.stream().wait();
    return Status::ok();
  }

 private:
  struct Entry {
    BoundReorder reorder;
    memory::desc src, dst;
  };
  ShapeCache<Entry> cache_;
};

std::unique_ptr<FastKernel> TransposePlan::instance() const { return std::make_unique<TransposeKernel>(); }

Status prepare_transpose(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  if (node.inputs.size() != 1 || node.outputs.size() != 1 || node.inputs[0] < 0) return Status::ok();
  const PlanTensor& x = plan.tensors[node.inputs[0]];
  if (dtype_of(x.dtype) == dt::undef || x.shape.empty() || x.shape.size() > 6 || shape_numel(x.shape) == 0 ||
      plan.tensors[node.outputs[0]].dtype != x.dtype)
    return Status::ok();
  *out = std::make_shared<TransposePlan>();
  return Status::ok();
}

}  // namespace

void register_dnnl_transpose_fast(FastRegistry& r) { r.add("Transpose", prepare_transpose); }

}  // namespace kiln
