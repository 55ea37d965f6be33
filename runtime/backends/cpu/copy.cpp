// "Reshape": the runtime form of every op that only relabels a tensor's shape (Reshape,
// Flatten, Squeeze, Unsqueeze, Identity, Dropout at inference). The compiler already computed
// the output shape, so the kernel is a byte copy.
#include <cstring>

#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {
Status reshape_cpu(const CpuKernelArgs& a) {
  if (a.inputs[0].bytes() != a.outputs[0].bytes())
    return internal_error("Reshape: input and output sizes differ");
  // In place (runtime/ops/in_place.h): the bytes are already there.
  if (a.outputs[0].data == a.inputs[0].data) return Status::ok();
  if (a.outputs[0].bytes()) std::memcpy(a.outputs[0].data, a.inputs[0].data, a.outputs[0].bytes());
  return Status::ok();
}
}  // namespace

void register_copy_cpu(CpuRegistry& r) {
  // In place over its data input: the output is the input's bytes.
  r.add("Reshape", reshape_cpu).arity(1, 1).in_place([](const Plan&, const PlanNode&, size_t input) {
    return input == 0;
  });
}

}  // namespace kiln
