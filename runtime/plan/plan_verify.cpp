// verify_plan: the structural checks every plan passes before the runtime touches it, whether
// it was just decoded from an untrusted file or just made by the compiler.
#include <string>
#include <vector>

#include "runtime/plan/plan_format.h"
#include "runtime/plan/plan_limits.h"
#include "runtime/plan/plan_verifier.h"

namespace kiln {
namespace {

// The dynamic-shape tables: every index in range, every target an existing dim or integer
// attribute, every input dim bound to one variable, and the stored (max-point) values equal to
// the expressions at the max point, so a corrupted expression is caught here rather than when a
// context evaluates it.
Status verify_dynamic(const Plan& p) {
  const size_t nv = p.dyn_vars.size();
  if (nv > kMaxDynVars) return invalid_plan("too many dynamic dims");
  if (nv == 0 && (!p.dyn_inputs.empty() || !p.dyn_exprs.empty()))
    return invalid_plan("shape expressions without dynamic dims");
  std::vector<int64_t> max_vars;
  for (const DynVar& v : p.dyn_vars) {
    if (v.min < 0 || v.max < v.min || v.opt < v.min || v.opt > v.max)
      return invalid_plan("dynamic dim '" + v.name + "' has a bad range");
    max_vars.push_back(v.max);
  }
  std::vector<uint8_t> var_bound(nv, 0);
  for (const DynInputDim& d : p.dyn_inputs) {
    bool is_input = false;
    for (int32_t t : p.inputs) is_input |= t == d.tensor;
    if (!is_input || d.dim >= p.tensors[d.tensor].shape.size() || d.var >= nv ||
        p.tensors[d.tensor].shape[d.dim] != p.dyn_vars[d.var].max)
      return invalid_plan("dynamic input dim entry is out of range");
    var_bound[d.var] = 1;
  }
  for (size_t v = 0; v < nv; ++v)
    if (!var_bound[v]) return invalid_plan("dynamic dim '" + p.dyn_vars[v].name + "' belongs to no input");
  for (const DynExpr& e : p.dyn_exprs) {
    // Atoms: the variables, then the divisions in order; a division reads only the variables
    // and the divisions before it, so nothing is circular.
    if (e.divs.size() > kMaxDynDivs || e.terms.size() > kMaxDynTerms)
      return invalid_plan("shape expression is too large");
    for (size_t j = 0; j < e.divs.size(); ++j) {
      const DynDiv& d = e.divs[j];
      if (d.divisor <= 0) return invalid_plan("shape expression divides by " + std::to_string(d.divisor));
      if (d.terms.size() > kMaxDynTerms) return invalid_plan("shape expression is too large");
      for (const DynTerm& t : d.terms)
        if (t.vars >> (nv + j)) return invalid_plan("shape expression's division uses an unknown or later atom");
    }
    for (const DynTerm& t : e.terms)
      if (t.vars >> (nv + e.divs.size())) return invalid_plan("shape expression uses an unknown dynamic dim");
    int64_t stored = 0;
    if (e.target == DynTarget::kTensorDim) {
      if (e.index < 0 || static_cast<size_t>(e.index) >= p.tensors.size() ||
          e.pos >= p.tensors[e.index].shape.size() || p.tensors[e.index].kind == TensorKind::kConstant)
        return invalid_plan("shape expression names a tensor dim out of range");
      stored = p.tensors[e.index].shape[e.pos];
    } else {
      if (e.index < 0 || static_cast<size_t>(e.index) >= p.nodes.size())
        return invalid_plan("shape expression names a node out of range");
      auto it = p.nodes[e.index].attrs.all().find(e.attr);
      if (it == p.nodes[e.index].attrs.all().end())
        return invalid_plan("shape expression names a missing attribute '" + e.attr + "'");
      if (e.target == DynTarget::kAttrInt && attr_kind(it->second) == AttrKind::kInt) {
        stored = std::get<int64_t>(it->second);
      } else if (e.target == DynTarget::kAttrInts && attr_kind(it->second) == AttrKind::kInts &&
                 e.pos < std::get<std::vector<int64_t>>(it->second).size()) {
        stored = std::get<std::vector<int64_t>>(it->second)[e.pos];
      } else {
        return invalid_plan("shape expression names attribute '" + e.attr + "' of the wrong kind");
      }
    }
    int64_t at_max;
    if (!eval_dyn_expr(p.dyn_vars, e, max_vars.data(), &at_max) || at_max != stored)
      return invalid_plan("a shape expression disagrees with the plan's shapes at the max point");
  }
  return Status::ok();
}

// Every tensor of one graph (the main one or a subgraph): dtype, rank and size bounded,
// constants inside the weights section (marked ready in *ready).
Status verify_tensors(const Plan& p, const std::vector<PlanTensor>& tensors, const std::string& where,
                      std::vector<uint8_t>* ready) {
  ready->assign(tensors.size(), 0);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const PlanTensor& t = tensors[i];
    // Sizes are computed as int64 products everywhere (PlanTensor::bytes, shape_numel): bound
    // them here so a corrupted dim cannot overflow them or request an absurd allocation.
    if (!dtype_is_storable(t.dtype) || t.shape.size() > kMaxRank)
      return invalid_plan(where + "tensor '" + t.name + "' has a bad dtype or rank");
    uint64_t bytes;
    if (!checked_bytes(t.dtype, t.shape, &bytes))
      return invalid_plan(where + "tensor '" + t.name + "' has an impossible shape " + shape_str(t.shape));
    if (t.kind == TensorKind::kConstant) {
      if (t.weight_bytes != t.bytes() || t.weight_offset > p.weights.size() ||
          t.weight_bytes > p.weights.size() - t.weight_offset)
        return invalid_plan(where + "constant tensor '" + t.name + "' lies outside the weights section");
      // Kernels read constants as their element type: an offset off the writer's alignment
      // would make those reads misaligned (found by fuzz_plan).
      if (t.weight_offset % kWeightAlignment)
        return invalid_plan(where + "constant tensor '" + t.name + "' starts at weights offset " +
                            std::to_string(t.weight_offset) + ", not a multiple of " + std::to_string(kWeightAlignment));
      (*ready)[i] = 1;
    }
  }
  return Status::ok();
}

// Every node of one graph reads tensors that exist and are bound or produced by then, and
// produces activations exactly once.
Status verify_nodes(const std::vector<PlanTensor>& tensors, const std::vector<PlanNode>& nodes,
                    const std::string& where, std::vector<uint8_t>* ready) {
  const int32_t nt = static_cast<int32_t>(tensors.size());
  for (const PlanNode& node : nodes) {
    for (int32_t t : node.inputs) {
      if (t == -1) continue;
      if (t < 0 || t >= nt)
        return invalid_plan(where + "node '" + node.name + "' reads tensor index " + std::to_string(t) + " of " +
                            std::to_string(nt));
      if (!(*ready)[t])
        return invalid_plan(where + "node '" + node.name + "' reads tensor '" + tensors[t].name +
                            "' before it is produced");
    }
    for (int32_t t : node.outputs) {
      if (t < 0 || t >= nt)
        return invalid_plan(where + "node '" + node.name + "' writes tensor index " + std::to_string(t));
      if ((*ready)[t] || tensors[t].kind != TensorKind::kActivation)
        return invalid_plan(where + "tensor '" + tensors[t].name + "' is produced twice");
      (*ready)[t] = 1;
    }
  }
  return Status::ok();
}

// The subgraphs of control-flow nodes. Ownership: every graph belongs to exactly one node, and a
// node of graph g (main: -1) owns only graphs after g, so the ownership is a tree and running a
// subgraph can never re-enter itself. Each subgraph: its tensors and nodes as above, every
// node on the CPU, formal inputs and captures distinct input tensors, captures bound to an
// operand of the owner with the same dtype and shape.
Status verify_subgraphs(const Plan& p) {
  const int32_t ng = static_cast<int32_t>(p.graphs.size());
  if (ng == 0) return Status::ok();
  if (p.is_dynamic()) return invalid_plan("a plan with dynamic shapes cannot hold subgraphs");
  struct Owner {
    int32_t graph = -2;  // -2: not owned yet
    const PlanNode* node = nullptr;
  };
  std::vector<Owner> owner(p.graphs.size());
  auto claim = [&](int32_t g, const std::vector<PlanNode>& nodes) -> Status {
    for (const PlanNode& n : nodes)
      for (int32_t s : n.subgraphs) {
        if (s < 0 || s >= ng || s <= g)
          return invalid_plan("node '" + n.name + "' names subgraph index " + std::to_string(s) + " (of " +
                              std::to_string(ng) + ", after graph " + std::to_string(g) + ")");
        if (owner[s].node) return invalid_plan("subgraph " + std::to_string(s) + " belongs to two nodes");
        if (n.backend != Backend::kCpu)
          return invalid_plan("node '" + n.name + "' runs subgraphs but is not on the cpu backend");
        owner[s] = Owner{g, &n};
      }
    return Status::ok();
  };
  KILN_TRY(claim(-1, p.nodes));
  for (int32_t g = 0; g < ng; ++g) KILN_TRY(claim(g, p.graphs[g].nodes));
  for (int32_t g = 0; g < ng; ++g) {
    const PlanGraph& sg = p.graphs[g];
    const std::string where = "subgraph " + std::to_string(g) + ": ";
    if (!owner[g].node) return invalid_plan(where + "no node owns it");
    const PlanNode& own = *owner[g].node;
    const std::vector<PlanTensor>& outer = owner[g].graph < 0 ? p.tensors : p.graphs[owner[g].graph].tensors;
    std::vector<uint8_t> ready;
    KILN_TRY(verify_tensors(p, sg.tensors, where, &ready));
    const int32_t nt = static_cast<int32_t>(sg.tensors.size());
    if (sg.captures.size() != sg.capture_operands.size())
      return invalid_plan(where + "captures and their operands differ in number");
    auto bind = [&](int32_t t) -> Status {
      if (t < 0 || t >= nt || sg.tensors[t].kind != TensorKind::kInput)
        return invalid_plan(where + "input index " + std::to_string(t) + " is not an input tensor");
      if (ready[t]) return invalid_plan(where + "tensor '" + sg.tensors[t].name + "' is bound twice");
      ready[t] = 1;
      return Status::ok();
    };
    for (int32_t t : sg.inputs) KILN_TRY(bind(t));
    for (size_t i = 0; i < sg.captures.size(); ++i) {
      const int32_t t = sg.captures[i], op = sg.capture_operands[i];
      KILN_TRY(bind(t));
      if (op < 0 || static_cast<size_t>(op) >= own.inputs.size() || own.inputs[op] < 0 ||
          static_cast<size_t>(own.inputs[op]) >= outer.size())
        return invalid_plan(where + "capture '" + sg.tensors[t].name + "' names operand " + std::to_string(op) +
                            " of node '" + own.name + "', which it does not have");
      const PlanTensor& o = outer[own.inputs[op]];
      if (o.dtype != sg.tensors[t].dtype || o.shape != sg.tensors[t].shape)
        return invalid_plan(where + "capture '" + sg.tensors[t].name + "' is " + dtype_name(sg.tensors[t].dtype) +
                            " " + shape_str(sg.tensors[t].shape) + " but operand '" + o.name + "' is " +
                            dtype_name(o.dtype) + " " + shape_str(o.shape));
    }
    for (const PlanNode& n : sg.nodes) {
      if (n.backend != Backend::kCpu) return invalid_plan(where + "node '" + n.name + "' is not on the cpu backend");
      if (!n.choice.empty())
        return invalid_plan(where + "node '" + n.name + "' has kernel choice '" + n.choice.str() +
                            "' but runs on the cpu");
    }
    KILN_TRY(verify_nodes(sg.tensors, sg.nodes, where, &ready));
    for (int32_t t : sg.outputs)
      if (t < 0 || t >= nt || !ready[t])
        return invalid_plan(where + "output index " + std::to_string(t) + " is never produced");
  }
  return Status::ok();
}

}  // namespace

Status verify_plan(const Plan& p) {
  KILN_TRY(verify_plan_structure(p));
  return verify_plan_nodes(p);
}

Status verify_plan_structure(const Plan& p) {
  const int32_t nt = static_cast<int32_t>(p.tensors.size());
  std::vector<uint8_t> ready;
  KILN_TRY(verify_tensors(p, p.tensors, "", &ready));
  for (int32_t t : p.inputs) {
    if (t < 0 || t >= nt || p.tensors[t].kind != TensorKind::kInput)
      return invalid_plan("plan input index " + std::to_string(t) + " is not an input tensor");
    ready[t] = 1;
  }
  KILN_TRY(verify_nodes(p.tensors, p.nodes, "", &ready));
  for (int32_t t : p.outputs)
    if (t < 0 || t >= nt || !ready[t])
      return invalid_plan("plan output index " + std::to_string(t) + " is never produced");
  KILN_TRY(verify_dynamic(p));
  for (const Segment& s : p.segments) {
    if (s.first_node < 0 || s.end_node < s.first_node ||
        s.end_node > static_cast<int32_t>(p.nodes.size()))
      return invalid_plan("segment node range out of bounds");
    for (int32_t t : s.copy_in)
      if (t < 0 || t >= nt) return invalid_plan("segment transfer names tensor index out of range");
  }
  return verify_subgraphs(p);
}

}  // namespace kiln
