#include "runtime/plan/plan.h"

#include <set>

namespace kiln {

const char* backend_name(Backend b) { return b == Backend::kOpenCL ? "opencl" : "cpu"; }

int32_t Plan::find_tensor(const std::string& name) const {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name == name) return static_cast<int32_t>(i);
  return -1;
}

bool eval_dyn_expr(const std::vector<DynVar>& dyn_vars, const DynExpr& e, const int64_t* vars, int64_t* out) {
  int64_t sum = 0;
  for (const DynTerm& t : e.terms) {
    int64_t prod = t.coef;
    for (size_t v = 0; v < dyn_vars.size(); ++v)
      if (t.vars >> v & 1)
        if (__builtin_mul_overflow(prod, vars[v] - dyn_vars[v].min, &prod)) return false;
    if (__builtin_add_overflow(sum, prod, &sum)) return false;
  }
  *out = sum;
  return true;
}

std::vector<Segment> compute_segments(const Plan& plan) {
  // Host-resident to begin with: inputs and constants (OpenCL uploads constants once per
  // context, so they are not per-run transfers and are left out of copy_in).
  std::vector<int> home(plan.tensors.size(), static_cast<int>(Backend::kCpu));
  std::vector<Segment> segs;
  for (size_t n = 0; n < plan.nodes.size(); ++n) {
    const PlanNode& node = plan.nodes[n];
    if (segs.empty() || segs.back().backend != node.backend) {
      Segment s;
      s.backend = node.backend;
      s.first_node = s.end_node = static_cast<int32_t>(n);
      segs.push_back(s);
    }
    Segment& seg = segs.back();
    seg.end_node = static_cast<int32_t>(n + 1);
    for (int32_t t : node.inputs) {
      if (t < 0) continue;
      if (plan.tensors[t].kind == TensorKind::kConstant) continue;
      if (home[t] != static_cast<int>(node.backend)) {
        bool listed = false;
        for (int32_t c : seg.copy_in) listed |= c == t;
        if (!listed) seg.copy_in.push_back(t);
      }
    }
    for (int32_t t : node.outputs) home[t] = static_cast<int>(node.backend);
  }
  return segs;
}

std::string KernelChoice::str() const {
  if (variant.empty()) return "portable";
  std::string s = variant;
  for (size_t i = 0; i < params.size(); ++i)
    s += (i ? "," : "[") + params[i].first + "=" + std::to_string(params[i].second) + (i + 1 == params.size() ? "]" : "");
  return s;
}

}  // namespace kiln
