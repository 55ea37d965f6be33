#include "runtime/backends/opencl/device_copy.h"
#include "runtime/device/cl_runtime.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {
Status reshape_cl(ClKernelArgs& a) {
  if (a.inputs[0].mem == a.outputs[0].mem) return Status::ok();  // in place (runtime/ops/in_place.h)
  size_t bytes = static_cast<size_t>(a.outputs[0].numel()) * dtype_size(a.outputs[0].dtype);
  return cl_device_copy(a, a.inputs[0].mem, a.outputs[0].mem, bytes);
}
}  // namespace

void register_copy_opencl(ClRegistry& r) { r.add("Reshape", reshape_cl); }

}  // namespace kiln
