#include "runtime/backends/opencl/normalization_cl.h"

#include <map>
#include <mutex>

namespace kiln::normcl {

Status kernel(ClKernelArgs& a, const char* file, const std::string& options, const char* fn, cl_kernel* out,
              const std::vector<const char*>& preludes) {
  // The prefixed sources live as long as the process: ClRuntime::kernel looks them up by
  // content on every launch.
  static std::mutex mu;
  static std::map<std::string, std::string> sources;
  std::string key = file;
  for (const char* p : preludes) key += std::string("+") + p;
  const std::string* src = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = sources.find(key);
    if (it == sources.end()) {
      std::string text = std::string(embedded_kernel_source("float_storage")) +
                         embedded_kernel_source("float_storage_x8") + embedded_kernel_source("warp_shuffle");
      for (const char* name : preludes) {
        const char* body = embedded_kernel_source(name);
        if (!body) return internal_error(std::string("kernel source ") + name + ".cl is not embedded");
        text += std::string(body) + "\n";
      }
      const char* body = embedded_kernel_source(file);
      if (!body) return internal_error(std::string("kernel source ") + file + ".cl is not embedded");
      it = sources.emplace(key, text + body).first;
    }
    src = &it->second;
  }
  const bool half = !a.outputs.empty() && a.outputs[0].dtype == DType::kFloat16;
  const std::string opts = half ? (options.empty() ? "-DKILN_HALF" : options + " -DKILN_HALF") : options;
  return a.cl.kernel(*src, opts, fn, out).with_context("node '" + a.node.name + "'");
}

bool float_operands(const PlanNode& n, const Plan& p, bool outputs) {
  DType dt = DType::kUndefined;
  auto ok = [&](int32_t t) {
    if (t < 0) return true;
    const PlanTensor& pt = p.tensors[t];
    if (!fits_int(shape_numel(pt.shape))) return false;
    if (pt.dtype != DType::kFloat32 && pt.dtype != DType::kFloat16) return false;
    if (dt == DType::kUndefined) dt = pt.dtype;
    return pt.dtype == dt;
  };
  for (int32_t t : n.inputs)
    if (!ok(t)) return false;
  if (outputs)
    for (int32_t t : n.outputs)
      if (!ok(t)) return false;
  return true;
}

}  // namespace kiln::normcl
