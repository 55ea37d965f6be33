#include "runtime/plan/plan.h"

#include <set>

namespace kiln {

const char* backend_name(Backend b) { return b == Backend::kOpenCL ? "opencl" : "cpu"; }

int32_t Plan::find_tensor(const std::string& name) const {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name == name) return static_cast<int32_t>(i);
  return -1;
}

namespace {
// sum_t coef_t * prod_{a in t.vars} atoms[a], checked; atoms beyond `n_atoms` are refused.
bool eval_terms(const std::vector<DynTerm>& terms, const int64_t* atoms, size_t n_atoms, int64_t* out) {
  int64_t sum = 0;
  for (const DynTerm& t : terms) {
    if (n_atoms < 32 && (t.vars >> n_atoms) != 0) return false;
    int64_t prod = t.coef;
    for (size_t a = 0; a < n_atoms; ++a)
      if (t.vars >> a & 1)
        if (__builtin_mul_overflow(prod, atoms[a], &prod)) return false;
    if (__builtin_add_overflow(sum, prod, &sum)) return false;
  }
  *out = sum;
  return true;
}
}  // namespace

bool eval_dyn_expr(const std::vector<DynVar>& dyn_vars, const DynExpr& e, const int64_t* vars, int64_t* out) {
  const size_t nv = dyn_vars.size();
  if (nv + e.divs.size() > 32) return false;
  int64_t atoms[32];
  for (size_t v = 0; v < nv; ++v)
    if (__builtin_sub_overflow(vars[v], dyn_vars[v].min, &atoms[v])) return false;
  for (size_t j = 0; j < e.divs.size(); ++j) {
    const DynDiv& d = e.divs[j];
    int64_t num;
    if (d.divisor <= 0 || !eval_terms(d.terms, atoms, nv + j, &num)) return false;
    int64_t q = num / d.divisor;  // truncates toward zero; divisor > 0 so no overflow
    const int64_t r = num % d.divisor;
    if (r != 0 && !d.ceil && num < 0) q -= 1;
    if (r != 0 && d.ceil && num > 0) q += 1;
    atoms[nv + j] = q;
  }
  return eval_terms(e.terms, atoms, nv + e.divs.size(), out);
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
