#include "runtime/backends/opencl/device_errors.h"

namespace kiln {
namespace {
constexpr int kErrorSlot = 0x7e;  // ClRuntime::scratch slot of the flag
constexpr size_t kFlagBytes = 3 * sizeof(int32_t);
}  // namespace

Status device_error_flag(ClRuntime& cl, cl_mem* out) {
  return cl.scratch(kErrorSlot, kFlagBytes, out, "device error flag");
}

Status reset_device_errors(ClRuntime& cl) {
  cl_mem flag;
  KILN_TRY(device_error_flag(cl, &flag));
  // upload() does not wait: the source must outlive the copy.
  static const int32_t kZero[3] = {0, 0, 0};
  return cl.upload(flag, kZero, kFlagBytes, "device error flag");
}

bool sets_device_errors(const Plan& plan, const PlanNode& node) {
  // Constant indices were checked when the plan was loaded.
  return node.op == "Gather" && node.inputs.size() > 1 && node.inputs[1] >= 0 &&
         plan.tensors[node.inputs[1]].kind != TensorKind::kConstant;
}

Status check_device_errors(ClRuntime& cl, const Plan& plan, const std::vector<PlanNode>* nodes) {
  cl_mem flag;
  KILN_TRY(device_error_flag(cl, &flag));
  int32_t v[3];
  KILN_TRY(cl.download(flag, v, kFlagBytes, "device error flag"));
  if (v[0] == 0) return Status::ok();
  KILN_TRY(reset_device_errors(cl));
  const int64_t value = static_cast<int64_t>(static_cast<uint64_t>(static_cast<uint32_t>(v[1])) |
                                             static_cast<uint64_t>(static_cast<uint32_t>(v[2])) << 32);
  const size_t n = static_cast<size_t>(v[0] - 1);
  const std::vector<PlanNode>& all = nodes && !nodes->empty() ? *nodes : plan.nodes;
  if (n >= all.size()) return internal_error("device error flag names node " + std::to_string(n));
  const PlanNode& node = all[n];
  const int64_t axis = node.attrs.get_int("axis", 0);
  const Shape& x = plan.tensors[node.inputs[0]].shape;
  return invalid_argument("node '" + node.name + "' (" + node.op + ", opencl): index " + std::to_string(value) +
                          " is out of range for axis " + std::to_string(axis) + " of size " +
                          (axis >= 0 && axis < static_cast<int64_t>(x.size()) ? std::to_string(x[axis]) : "?"));
}

}  // namespace kiln
