#include <cstdio>
#include <fstream>
#include <algorithm>
#include <iterator>
#include <map>

#include "runtime/cli/args.h"
#include "runtime/cli/verbs.h"
#include "runtime/exec/memory_plan.h"
#include "runtime/ops/node_precision.h"
#include "runtime/plan/plan_file.h"
#include "runtime/plan/plan_format.h"

namespace kiln::cli {

namespace {
// A dynamic plan's expression in the variables themselves: sum_S b_S prod_{i in S} (v_i - min_i)
// expanded into monomials, e.g. "B*S" or "2*S+1"; divisions as "floor((H-1)/2)" (nested).
std::string terms_text(const Plan& p, const DynExpr& e, const std::vector<DynTerm>& terms) {
  const size_t nv = p.dyn_vars.size();
  const uint32_t var_mask = (1u << nv) - 1;
  std::map<uint32_t, int64_t> mono;
  for (const DynTerm& t : terms) {
    const uint32_t vb = t.vars & var_mask, db = t.vars & ~var_mask;
    for (uint32_t T = vb;; T = (T - 1) & vb) {
      int64_t c = t.coef;
      for (size_t i = 0; i < nv; ++i)
        if ((vb & ~T) >> i & 1) c *= -p.dyn_vars[i].min;
      mono[T | db] += c;
      if (T == 0) break;
    }
  }
  std::string out;
  for (auto it = mono.rbegin(); it != mono.rend(); ++it) {
    if (it->second == 0) continue;
    std::string vars;
    for (size_t i = 0; i < 32; ++i) {
      if (!(it->first >> i & 1)) continue;
      std::string atom;
      if (i < nv) {
        atom = p.dyn_vars[i].name;
      } else if (i - nv < e.divs.size()) {
        const DynDiv& d = e.divs[i - nv];
        std::string num = terms_text(p, e, d.terms);
        if (num.find_first_of("+-*") != std::string::npos) num = "(" + num + ")";
        atom = std::string(d.ceil ? "ceil" : "floor") + "(" + num + "/" + std::to_string(d.divisor) + ")";
      }
      vars += (vars.empty() ? "" : "*") + atom;
    }
    const int64_t c = it->second;
    std::string term = vars.empty() ? std::to_string(c < 0 ? -c : c)
                                    : ((c == 1 || c == -1) ? vars : std::to_string(c < 0 ? -c : c) + "*" + vars);
    out += out.empty() ? (c < 0 ? "-" : "") + term : (c < 0 ? "-" : "+") + term;
  }
  return out.empty() ? "0" : out;
}

std::string expr_text(const Plan& p, const DynExpr& e) { return terms_text(p, e, e.terms); }

// "1x3x224x224"; a dynamic plan's varying dims as their expressions, e.g. "Bx(S+1)x16".
std::string shape_text(const Plan& p, int32_t t) {
  const Shape& s = p.tensors[t].shape;
  if (!p.is_dynamic() || s.empty()) return shape_str(s);
  std::string out;
  for (size_t d = 0; d < s.size(); ++d) {
    std::string dim = std::to_string(s[d]);
    for (const DynExpr& e : p.dyn_exprs)
      if (e.target == DynTarget::kTensorDim && e.index == t && e.pos == d) {
        dim = expr_text(p, e);
        if (dim.find_first_of("+-*") != std::string::npos) dim = "(" + dim + ")";
      }
    out += (d ? "x" : "") + dim;
  }
  return out;
}

std::string tensor_line(const Plan& p, int32_t t) {
  return p.tensors[t].name + "  " + dtype_name(p.tensors[t].dtype) + " " + shape_text(p, t);
}
std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1u << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}
// Control-flow nodes' subgraphs: who owns each, what it binds and computes (all on the cpu).
void print_subgraphs(const Plan& p) {
  if (p.graphs.empty()) return;
  std::printf("\nsubgraphs (%zu, run on the cpu by their control-flow node):\n", p.graphs.size());
  auto names = [](const PlanGraph& g, const std::vector<int32_t>& ts) {
    std::string s;
    for (int32_t t : ts) s += (s.empty() ? "" : ", ") + g.tensors[t].name + " " + shape_str(g.tensors[t].shape);
    return s.empty() ? std::string("-") : s;
  };
  auto owner_of = [&](size_t gi) -> std::string {
    for (const PlanNode& n : p.nodes)
      for (int32_t s : n.subgraphs)
        if (s == static_cast<int32_t>(gi)) return n.name;
    for (const PlanGraph& g : p.graphs)
      for (const PlanNode& n : g.nodes)
        for (int32_t s : n.subgraphs)
          if (s == static_cast<int32_t>(gi)) return n.name;
    return "?";
  };
  for (size_t gi = 0; gi < p.graphs.size(); ++gi) {
    const PlanGraph& g = p.graphs[gi];
    std::printf("  #%zu of '%s'\n       inputs: %s\n       captures: %s\n       outputs: %s\n", gi,
                owner_of(gi).c_str(), names(g, g.inputs).c_str(), names(g, g.captures).c_str(),
                names(g, g.outputs).c_str());
    std::string ops;
    for (const PlanNode& n : g.nodes) ops += (ops.empty() ? "" : ", ") + n.name + " (" + n.op + ")";
    std::printf("       nodes (%zu): %s\n", g.nodes.size(), ops.empty() ? "-" : ops.c_str());
  }
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1, {{"--help", "-h", false}}, &args);
  if (!st) return fail("inspect", st.message());
  if (args.has("--help")) {
    std::puts("usage: kiln inspect PLAN\n\nPrints a plan's format version, target device, inputs, outputs, "
              "segments with their transfers, every node with its backend, kernel and precision (fp32, fp16, "
              "int8, fp8-e4m3, ... and conversions such as fp32->fp16), fused groups and weight bytes, and the plan file's "
              "SHA-256 (the content hash --plan-sha256 pins); for a "
              "plan built with --min-shapes/--max-shapes, each dynamic dim's range and every shape-dependent "
              "dim and attribute as a formula of them (shapes shown are the max).");
    return 0;
  }
  if (args.positional().size() != 1) return fail("inspect", "expected one PLAN argument (see --help)");
  const std::string path = args.positional()[0];
  Plan p;
  std::string sha256;
  st = load_plan_file(path, "", &p, &sha256);
  if (!st) return fail("inspect", st.message());

  std::printf("plan: %s\n", path.c_str());
  std::printf("sha256: %s (pin it with --plan-sha256 / kiln_plan_load_file_pinned)\n", sha256.c_str());
  std::printf("format version: %u (written by %s)\n", p.format_version, p.writer_version.c_str());
  std::printf("model: %s\n", p.model_name.empty() ? "(unnamed)" : p.model_name.c_str());
  std::printf("target device: %s '%s'%s%s%s\n", p.target.kind.c_str(), p.target.name.c_str(),
              p.target.driver_version.empty() ? "" : ", driver ", p.target.driver_version.c_str(),
              p.target.kind != "opencl"         ? ""
              : p.target.device_type & 4        ? ", type gpu"
              : p.target.device_type & 8        ? ", type accelerator"
              : p.target.device_type & 2        ? ", type cpu"
                                                : ", type other");
  std::string caps;
  for (const auto& c : p.required_caps) caps += (caps.empty() ? "" : ", ") + c;
  std::printf("required capabilities: %s\n", caps.empty() ? "(none)" : caps.c_str());
  std::printf("weights: %s in %zu constant tensors\n", human_bytes(p.weights.size()).c_str(),
              static_cast<size_t>(std::count_if(p.tensors.begin(), p.tensors.end(),
                                                [](const PlanTensor& t) { return t.kind == TensorKind::kConstant; })));
  {
    std::vector<Backend> backends;
    for (const PlanNode& n : p.nodes) backends.push_back(n.backend);
    const ArenaPlan host = plan_arena(p, backends, Backend::kCpu, 64);
    const SharedBuffersPlan dev = plan_shared_buffers(p, backends, Backend::kOpenCL, 256);
    const ArenaPlan host_copy = plan_arena(p, backends, Backend::kCpu, 64, false);
    const SharedBuffersPlan dev_copy = plan_shared_buffers(p, backends, Backend::kOpenCL, 256, false);
    std::printf("peak activation memory%s: host %s (%s without in-place ops, %s without reuse), device %s in %zu "
                "buffers (%s without in-place ops, %s without reuse)\n",
                p.is_dynamic() ? " (at the max shapes)" : "", human_bytes(host.size).c_str(),
                human_bytes(host_copy.size).c_str(), human_bytes(host.unplanned).c_str(), human_bytes(dev.total).c_str(),
                dev.sizes.size(), human_bytes(dev_copy.total).c_str(), human_bytes(dev.unplanned).c_str());
    size_t aliases = 0;
    for (Backend b : {Backend::kCpu, Backend::kOpenCL}) {
      const std::vector<int32_t> root = in_place_roots(p, backends, b);
      for (size_t t = 0; t < root.size(); ++t) aliases += root[t] != static_cast<int32_t>(t);
    }
    std::printf("in-place outputs: %zu possible (an output written over an input that dies there; kept where it lowers the peak)\n", aliases);
  }
  if (p.is_dynamic()) {
    std::printf("\ndynamic dims (%zu shape-dependent dims and attributes):\n", p.dyn_exprs.size());
    for (size_t v = 0; v < p.dyn_vars.size(); ++v) {
      std::string where;
      for (const DynInputDim& d : p.dyn_inputs)
        if (d.var == v) where += (where.empty() ? "" : ", ") + p.tensors[d.tensor].name + "[" + std::to_string(d.dim) + "]";
      const DynVar& dv = p.dyn_vars[v];
      std::printf("  %s in [%lld, %lld], tuned for %lld: %s\n", dv.name.c_str(), static_cast<long long>(dv.min),
                  static_cast<long long>(dv.max), static_cast<long long>(dv.opt), where.c_str());
    }
  }
  std::printf("\ninputs:\n");
  for (int32_t t : p.inputs) std::printf("  %s\n", tensor_line(p, t).c_str());
  std::printf("outputs:\n");
  for (int32_t t : p.outputs) std::printf("  %s\n", tensor_line(p, t).c_str());

  std::printf("\nsegments:\n");
  for (size_t s = 0; s < p.segments.size(); ++s) {
    const Segment& seg = p.segments[s];
    std::printf("  #%zu %-6s nodes %d..%d\n", s, backend_name(seg.backend), seg.first_node, seg.end_node - 1);
    for (int32_t t : seg.copy_in)
      std::printf("      transfer in: %s (%s, %s)\n", p.tensors[t].name.c_str(),
                  seg.backend == Backend::kOpenCL ? "host->device" : "device->host",
                  human_bytes(p.tensors[t].bytes()).c_str());
  }

  std::printf("\nnodes (%zu):\n", p.nodes.size());
  size_t fused_groups = 0;
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    const PlanNode& n = p.nodes[i];
    const std::string variant = n.choice.empty() ? "" : " " + n.choice.str();
    std::printf("  [%zu] %s  op=%s  backend=%s  kernel=%s%s  precision=%s\n", i, n.name.c_str(), n.op.c_str(),
                backend_name(n.backend), n.kernel.c_str(), variant.c_str(), node_precision(p, n).c_str());
    std::string ins, outs;
    for (int32_t t : n.inputs) ins += (ins.empty() ? "" : ", ") + (t < 0 ? std::string("-") : p.tensors[t].name);
    for (int32_t t : n.outputs) outs += (outs.empty() ? "" : ", ") + p.tensors[t].name + " " + shape_text(p, t);
    std::printf("       in: %s\n       out: %s\n", ins.c_str(), outs.c_str());
    if (!n.attrs.empty()) std::printf("       attrs: %s\n", n.attrs.to_string().c_str());
    for (const DynExpr& e : p.dyn_exprs)
      if (e.target != DynTarget::kTensorDim && e.index == static_cast<int32_t>(i))
        std::printf("       dynamic: %s%s = %s\n", e.attr.c_str(),
                    e.target == DynTarget::kAttrInts ? ("[" + std::to_string(e.pos) + "]").c_str() : "",
                    expr_text(p, e).c_str());
    if (n.fused.size() > 1) {
      ++fused_groups;
      std::string names;
      for (const auto& f2 : n.fused) names += (names.empty() ? "" : " + ") + f2;
      std::printf("       fused: %s\n", names.c_str());
    }
  }
  std::printf("\nfused groups: %zu\n", fused_groups);
  print_subgraphs(p);
  return 0;
}

}  // namespace kiln::cli
