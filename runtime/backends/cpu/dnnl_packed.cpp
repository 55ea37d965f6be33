#include "runtime/backends/cpu/dnnl_packed.h"

#include <cstdlib>
#include <cstring>

namespace kiln {

std::shared_ptr<void> aligned_buffer(size_t bytes) {
  const size_t size = (std::max<size_t>(bytes, 64) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, size);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, size);
  return std::shared_ptr<void>(p, std::free);
}

Status PackedWeights::pack(const dnnl::memory::desc& src_md, const void* src, const dnnl::memory::desc& dst_md) {
  md = dst_md;
  data = aligned_buffer(dst_md.get_size());
  return dnnl_util::guard("weights reorder", [&] {
    dnnl::engine& eng = dnnl_util::engine();
    dnnl::stream s(eng);
    dnnl::memory from(src_md, eng, const_cast<void*>(src)), to(dst_md, eng, data.get());
    dnnl::reorder(from, to).execute(s, from, to);
    s.wait();
  });
}

ConstOperand ConstOperand::of(const Plan& plan, int32_t t) {
  ConstOperand c;
  const PlanTensor& pt = plan.tensors[t];
  c.data = plan.weight_data(pt);
  c.md = dnnl_util::plain_md(pt.shape, dnnl_util::dtype_of(pt.dtype));
  return c;
}

bool operands_are(const Plan& p, const PlanNode& n, DType t) {
  for (int32_t i : n.inputs)
    if (i >= 0 && p.tensors[i].dtype != t) return false;
  for (int32_t o : n.outputs)
    if (o >= 0 && p.tensors[o].dtype != t) return false;
  return true;
}

int activation_post_ops(const linear::Epilogue& e) {
  switch (e.act) {
    case linear::Activation::kNone: return 0;
    case linear::Activation::kHardSigmoid:
    case linear::Activation::kSelu: return 2;
    default: return 1;
  }
}

}  // namespace kiln
