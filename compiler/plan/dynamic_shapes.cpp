#include "compiler/plan/dynamic_shapes.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "compiler/ir/graph.h"
#include "compiler/quant/accuracy.h"
#include "runtime/plan/plan_format.h"

namespace kiln {
namespace {

struct InputRange {
  std::string name;
  Shape min, max, opt;
  std::vector<int32_t> var;  // by dim: dynamic variable, or -1
};

std::string vars_str(const std::vector<DynVar>& vars, const std::vector<int64_t>& at) {
  std::string s;
  for (size_t i = 0; i < vars.size(); ++i) s += (i ? ", " : "") + vars[i].name + "=" + std::to_string(at[i]);
  return s;
}

// Reads the ranges, checks them against the model's inputs and groups dynamic dims into
// variables (dims with the same ONNX dim_param are one variable).
Status collect_ranges(const ir::Graph& g, const BuildOptions& o, std::vector<InputRange>* ranges,
                      std::vector<DynVar>* vars) {
  for (const auto* m : {&o.min_shapes, &o.max_shapes})
    for (const auto& [name, dims] : *m) {
      const bool in_other = (m == &o.min_shapes ? o.max_shapes : o.min_shapes).count(name) != 0;
      if (!in_other)
        return invalid_argument("--" + std::string(m == &o.min_shapes ? "min" : "max") + "-shapes names '" + name +
                                "' but --" + (m == &o.min_shapes ? "max" : "min") + "-shapes does not");
      if (!g.find_value(name) || !g.find_value(name)->is_graph_input)
        return invalid_argument("--min-shapes/--max-shapes name '" + name + "', which is not a model input");
    }
  std::map<std::string, int32_t> by_key;
  for (const ir::Value* in : g.inputs) {
    auto mi = o.min_shapes.find(in->name);
    if (mi == o.min_shapes.end()) continue;
    InputRange r;
    r.name = in->name;
    r.min = mi->second;
    r.max = o.max_shapes.at(in->name);
    auto oi = o.shapes.find(in->name);
    r.opt = oi == o.shapes.end() ? r.max : oi->second;
    const std::string what = "input '" + in->name + "'";
    if (r.min.size() != r.max.size() || r.opt.size() != r.max.size() ||
        (in->has_shape && in->shape.size() != r.max.size()))
      return invalid_argument(what + ": --min-shapes " + shape_str(r.min) + ", --max-shapes " + shape_str(r.max) +
                              " and --shapes " + shape_str(r.opt) + " must have the model's rank" +
                              (in->has_shape ? " (" + std::to_string(in->shape.size()) + ")" : ""));
    for (size_t d = 0; d < r.max.size(); ++d) {
      const std::string dim = what + " dim " + std::to_string(d);
      if (!(r.min[d] <= r.opt[d] && r.opt[d] <= r.max[d]))
        return invalid_argument(dim + ": need min <= --shapes <= max, got " + std::to_string(r.min[d]) + ", " +
                                std::to_string(r.opt[d]) + ", " + std::to_string(r.max[d]));
      if (in->has_shape && in->shape[d] >= 0 && (r.min[d] != in->shape[d] || r.max[d] != in->shape[d]))
        return invalid_argument(dim + " is fixed to " + std::to_string(in->shape[d]) + " by the model, got range [" +
                                std::to_string(r.min[d]) + ", " + std::to_string(r.max[d]) + "]");
      r.var.push_back(-1);
      if (r.min[d] == r.max[d]) continue;
      const std::string param = d < in->dim_names.size() ? in->dim_names[d] : "";
      const std::string key = param.empty() ? in->name + "[" + std::to_string(d) + "]" : param;
      auto it = by_key.find(key);
      if (it == by_key.end()) {
        if (vars->size() == kMaxDynVars)
          return unsupported("more than " + std::to_string(kMaxDynVars) +
                             " dynamic dims (each needs its own builds); fix some with equal min and max");
        it = by_key.emplace(key, static_cast<int32_t>(vars->size())).first;
        vars->push_back(DynVar{key, r.min[d], r.max[d], r.opt[d]});
      }
      const DynVar& v = (*vars)[it->second];
      if (v.min != r.min[d] || v.max != r.max[d] || v.opt != r.opt[d])
        return invalid_argument(dim + " is '" + key + "' like an earlier input dim but has another range");
      r.var.back() = it->second;
    }
    ranges->push_back(std::move(r));
  }
  return Status::ok();
}

// Every integer of a plan that may vary with the shapes, in a fixed order, and a check that two
// plans agree on everything else.
struct Slot {
  DynTarget target;
  int32_t index;
  std::string attr;
  uint32_t pos;
};

std::string describe(const Plan& p, const Slot& s) {
  if (s.target == DynTarget::kTensorDim) {
    std::string producer;
    for (const PlanNode& n : p.nodes)
      if (std::count(n.outputs.begin(), n.outputs.end(), s.index)) producer = " (output of node '" + n.name + "')";
    return "tensor '" + p.tensors[s.index].name + "'" + producer + " dim " + std::to_string(s.pos);
  }
  return "node '" + p.nodes[s.index].name + "' attribute '" + s.attr + "'" +
         (s.target == DynTarget::kAttrInts ? "[" + std::to_string(s.pos) + "]" : "");
}

std::vector<Slot> slots_of(const Plan& p) {
  std::vector<Slot> out;
  for (size_t t = 0; t < p.tensors.size(); ++t)
    if (p.tensors[t].kind != TensorKind::kConstant)
      for (uint32_t d = 0; d < p.tensors[t].shape.size(); ++d)
        out.push_back({DynTarget::kTensorDim, static_cast<int32_t>(t), "", d});
  for (size_t n = 0; n < p.nodes.size(); ++n)
    for (const auto& [name, v] : p.nodes[n].attrs.all()) {
      if (attr_kind(v) == AttrKind::kInt) out.push_back({DynTarget::kAttrInt, static_cast<int32_t>(n), name, 0});
      if (attr_kind(v) == AttrKind::kInts)
        for (uint32_t i = 0; i < std::get<std::vector<int64_t>>(v).size(); ++i)
          out.push_back({DynTarget::kAttrInts, static_cast<int32_t>(n), name, i});
    }
  return out;
}

int64_t slot_value(const Plan& p, const Slot& s) {
  if (s.target == DynTarget::kTensorDim) return p.tensors[s.index].shape[s.pos];
  const AttrValue& v = p.nodes[s.index].attrs.all().at(s.attr);
  return s.target == DynTarget::kAttrInt ? std::get<int64_t>(v) : std::get<std::vector<int64_t>>(v)[s.pos];
}

bool same_attr_except_ints(const AttrValue& a, const AttrValue& b) {
  if (attr_kind(a) != attr_kind(b)) return false;
  switch (attr_kind(a)) {
    case AttrKind::kInt: return true;
    case AttrKind::kInts: return std::get<std::vector<int64_t>>(a).size() == std::get<std::vector<int64_t>>(b).size();
    case AttrKind::kTensor: {
      const HostTensor& x = *std::get<std::shared_ptr<const HostTensor>>(a);
      const HostTensor& y = *std::get<std::shared_ptr<const HostTensor>>(b);
      return x.dtype() == y.dtype() && x.shape() == y.shape() &&
             std::equal(x.data(), x.data() + x.size_bytes(), y.data());
    }
    default: return a == b;
  }
}

// `p` must be `ref` with other integers only.
Status same_structure(const Plan& ref, const Plan& p) {
  const std::string fix = "; give it equal --min-shapes and --max-shapes (or build one plan per shape)";
  if (ref.tensors.size() != p.tensors.size() || ref.nodes.size() != p.nodes.size() || ref.inputs != p.inputs ||
      ref.outputs != p.outputs || ref.kernel_sources != p.kernel_sources)
    return unsupported("the optimized graph changes with the input shapes (" + std::to_string(ref.nodes.size()) +
                       " nodes at the max shapes, " + std::to_string(p.nodes.size()) + " here)" + fix);
  for (size_t t = 0; t < ref.tensors.size(); ++t) {
    const PlanTensor &a = ref.tensors[t], &b = p.tensors[t];
    if (a.name != b.name || a.dtype != b.dtype || a.kind != b.kind || a.shape.size() != b.shape.size())
      return unsupported("tensor '" + a.name + "' changes name, dtype or rank with the input shapes" + fix);
    if (a.kind == TensorKind::kConstant &&
        (a.shape != b.shape || a.weight_bytes != b.weight_bytes ||
         !std::equal(ref.weight_data(a), ref.weight_data(a) + a.weight_bytes, p.weight_data(b)))) {
      std::string reader;
      for (const PlanNode& n : ref.nodes)
        if (reader.empty() && std::count(n.inputs.begin(), n.inputs.end(), static_cast<int32_t>(t)))
          reader = " (read by node '" + n.name + "')";
      return unsupported("constant '" + a.name + "'" + reader + " is " + shape_str(a.shape) +
                         " at the max shapes but has other contents or shape " + shape_str(b.shape) +
                         " here: shape-dependent constants are not supported" + fix);
    }
  }
  for (size_t n = 0; n < ref.nodes.size(); ++n) {
    const PlanNode &a = ref.nodes[n], &b = p.nodes[n];
    if (a.name != b.name || a.op != b.op || a.inputs != b.inputs || a.outputs != b.outputs ||
        a.attrs.all().size() != b.attrs.all().size())
      return unsupported("node '" + a.name + "' (" + a.op + ") changes with the input shapes (here: '" + b.name +
                         "' (" + b.op + "))" + fix);
    for (const auto& [name, v] : a.attrs.all()) {
      auto it = b.attrs.all().find(name);
      if (it == b.attrs.all().end() || !same_attr_except_ints(v, it->second))
        return unsupported("node '" + a.name + "' attribute '" + name +
                           "' changes kind, length or a non-integer value with the input shapes" + fix);
    }
  }
  return Status::ok();
}

}  // namespace

Status build_dynamic_plan(const std::function<Status(ir::Graph*)>& import, const BuildOptions& opts, Plan* out) {
  std::vector<InputRange> ranges;
  std::vector<DynVar> vars;
  {
    ir::Graph g;
    KILN_TRY(import(&g));
    KILN_TRY(collect_ranges(g, opts, &ranges, &vars));
  }
  const size_t k = vars.size();
  // The points: the 2^k corners (bit i of the index: var i at max), then held-out points.
  std::vector<std::vector<int64_t>> points;
  for (uint32_t m = 0; m < (1u << k); ++m) {
    std::vector<int64_t> at;
    for (size_t i = 0; i < k; ++i) at.push_back(m >> i & 1 ? vars[i].max : vars[i].min);
    points.push_back(at);
  }
  const size_t corners = points.size();
  auto held_out = [&](auto f) {
    std::vector<int64_t> at;
    for (const DynVar& v : vars) at.push_back(f(v));
    if (std::find(points.begin(), points.end(), at) == points.end()) points.push_back(at);
  };
  held_out([](const DynVar& v) { return v.opt; });
  held_out([](const DynVar& v) { return v.min + (v.max - v.min) / 2; });
  held_out([](const DynVar& v) { return std::min(v.min + 1, v.max); });
  held_out([](const DynVar& v) { return std::max(v.max - 1, v.min); });
  held_out([](const DynVar& v) { return v.min + (v.max - v.min) / 3; });
  // One variable off its corners at a time, so a dim that is not multilinear in one variable
  // alone is caught even where the diagonal points above happen to fit.
  for (size_t i = 0; k > 1 && i < k; ++i) {
    std::vector<int64_t> at;
    for (size_t j = 0; j < k; ++j) at.push_back(j == i ? vars[j].min + (vars[j].max - vars[j].min) / 2 : vars[j].max);
    if (std::find(points.begin(), points.end(), at) == points.end()) points.push_back(at);
  }

  // INT8/FP8 calibration runs once, at the --shapes point (the samples' shape); every other
  // point reads the same ranges from the calibration cache (a scratch one unless --calib-cache
  // is given), so all points quantize alike.
  BuildOptions base = opts;
  ScratchCalibCache scratch;
  if (base.calib_cache.empty() && base.has_calibration_data()) {
    KILN_TRY(scratch.create());
    base.calib_cache_dir = scratch.dir();
  }
  std::vector<int64_t> opt_at;
  for (const DynVar& v : vars) opt_at.push_back(v.opt);
  std::vector<size_t> order;
  order.push_back(static_cast<size_t>(std::find(points.begin(), points.end(), opt_at) - points.begin()));
  for (size_t i = 0; i < points.size(); ++i)
    if (i != order[0]) order.push_back(i);

  std::vector<Plan> plans(points.size());
  for (size_t i : order) {
    BuildOptions o = base;
    o.min_shapes.clear();
    o.max_shapes.clear();
    if (i != order[0]) o.report = nullptr;  // the --shapes point's build speaks for all
    for (const InputRange& r : ranges) {
      Shape s = r.min;
      for (size_t d = 0; d < s.size(); ++d)
        if (r.var[d] >= 0) s[d] = points[i][r.var[d]];
      o.shapes[r.name] = s;
    }
    ir::Graph g;
    KILN_TRY(import(&g));
    KILN_TRY_CTX(build_plan_from_graph(g, o, &plans[i]), "building at " + vars_str(vars, points[i]));
    // Subgraphs have no shape formulas (yet): their shapes are those of one build.
    for (const PlanNode& n : plans[i].nodes)
      if (k > 0 && !n.subgraphs.empty())
        return unsupported("node '" + n.name + "' (" + n.op + ") runs subgraphs at run time, which plans with "
                           "--min-shapes/--max-shapes cannot hold yet (fix the shapes, or --freeze the inputs an "
                           "If's condition depends on so it is decided at build time)");
  }
  Plan& ref = plans[corners - 1];
  if (k == 0) {
    *out = std::move(ref);
    return Status::ok();
  }
  for (size_t i = 0; i < plans.size(); ++i)
    if (i != corners - 1) KILN_TRY_CTX(same_structure(ref, plans[i]), "at " + vars_str(vars, points[i]));

  const std::vector<Slot> slots = slots_of(ref);
  for (const Slot& s : slots) {
    std::vector<int64_t> f;
    for (const Plan& p : plans) f.push_back(slot_value(p, s));
    // Möbius inversion over the corners: f(u) = sum_S b_S prod_{i in S} u_i with u_i = v_i - min_i;
    // b_S = (alternating sum of f over the corners below S) / prod_{i in S} (max_i - min_i).
    DynExpr e{s.target, s.index, s.attr, s.pos, {}};
    for (uint32_t S = 0; S < corners; ++S) {
      __int128 delta = 0, width = 1;
      for (uint32_t T = S;; T = (T - 1) & S) {
        delta += (__builtin_popcount(S ^ T) & 1) ? -static_cast<__int128>(f[T]) : f[T];
        if (T == 0) break;
      }
      for (size_t i = 0; i < k; ++i)
        if (S >> i & 1) width *= vars[i].max - vars[i].min;
      if (delta % width != 0) {
        std::string at;
        for (uint32_t c = 0; c < corners; ++c) at += (c ? ", " : "") + std::to_string(f[c]) + " at " + vars_str(vars, points[c]);
        return unsupported(describe(ref, s) + " is not an integer multilinear function of the dynamic dims (" + at +
                           "): e.g. a floor division by a stride over a dynamic dim; narrow that dim's range to "
                           "one value or change the model");
      }
      if (delta != 0) e.terms.push_back({S, static_cast<int64_t>(delta / width)});
    }
    bool varies = false;
    for (const DynTerm& t : e.terms) varies |= t.vars != 0;
    for (size_t i = corners; i < points.size(); ++i) {
      int64_t predicted;
      if (!eval_dyn_expr(vars, e, points[i].data(), &predicted) ||
          predicted != f[i])
        return unsupported(describe(ref, s) + " is not a multilinear function of the dynamic dims: at " +
                           vars_str(vars, points[i]) + " it is " + std::to_string(f[i]) +
                           " but the range's corners predict " + std::to_string(predicted) +
                           " (e.g. a floor division by a stride over a dynamic dim); narrow that dim's range to "
                           "one value or change the model");
    }
    if (!varies) continue;
    if (s.target == DynTarget::kTensorDim) {
      // Memory is planned at the max corner: every dim must be largest there. A multilinear
      // function is monotone in u_i over the box iff it is at every corner.
      for (uint32_t c = 0; c < corners; ++c)
        for (size_t i = 0; i < k; ++i)
          if (!(c >> i & 1) && (f[c] > f[c | (1u << i)] || f[c] < 0))
            return unsupported(describe(ref, s) + " shrinks as '" + vars[i].name + "' grows (" + std::to_string(f[c]) +
                               " at " + vars_str(vars, points[c]) + ", " + std::to_string(f[c | (1u << i)]) + " at " +
                               vars_str(vars, points[c | (1u << i)]) +
                               "); memory is planned at the max shapes, so this is not supported");
    }
    ref.dyn_exprs.push_back(std::move(e));
  }
  ref.dyn_vars = vars;
  for (const InputRange& r : ranges) {
    const int32_t t = ref.find_tensor(r.name);
    for (size_t d = 0; d < r.var.size(); ++d)
      if (r.var[d] >= 0 && t >= 0) ref.dyn_inputs.push_back({t, static_cast<uint32_t>(d), static_cast<uint32_t>(r.var[d])});
  }
  KILN_TRY(verify_plan(ref).with_context("compiler produced an inconsistent dynamic plan (kiln bug)"));
  *out = std::move(ref);
  return Status::ok();
}

}  // namespace kiln
