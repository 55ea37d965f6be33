#include "compiler/plan/dynamic_shapes.h"

#include <algorithm>
#include <climits>
#include <map>
#include <cstdio>
#include <cstdlib>

#include "compiler/ir/graph.h"
#include "compiler/quant/accuracy.h"
#include "compiler/quant/precision_search.h"
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

// ---- Shape formulas: multilinear sums over the variables and floor divisions (runtime/plan/plan.h).

// A formula fitted for a tensor dim, with its values at the probe points.
struct Fitted {
  DynExpr e;
  std::vector<int64_t> f;
};

void normalize(std::vector<DynTerm>* terms) {
  std::map<uint32_t, int64_t> by;
  for (const DynTerm& t : *terms) by[t.vars] += t.coef;  // callers keep coefficients small
  terms->clear();
  for (const auto& [v, c] : by)
    if (c != 0) terms->push_back({v, c});
}

bool add_const(std::vector<DynTerm>* terms, int64_t c) {
  for (DynTerm& t : *terms)
    if (t.vars == 0) return !__builtin_add_overflow(t.coef, c, &t.coef);
  terms->push_back({0, c});
  return true;
}

// m * x + c
bool affine(const DynExpr& x, int64_t m, int64_t c, DynExpr* out) {
  *out = x;
  for (DynTerm& t : out->terms)
    if (__builtin_mul_overflow(t.coef, m, &t.coef)) return false;
  if (!add_const(&out->terms, c)) return false;
  normalize(&out->terms);
  return true;
}

// floor((x + c) / s) + e; a floor division of a floor division folds into one:
// floor((floor(N/d) + q) / s) = floor((N + q*d) / (d*s)).
bool floordiv(const DynExpr& x, int64_t c, int64_t s, int64_t e, size_t nv, DynExpr* out) {
  std::vector<DynTerm> num = x.terms;
  if (!add_const(&num, c)) return false;
  normalize(&num);
  *out = x;
  int64_t q = 0;
  size_t others = 0;
  bool last_div = false;
  for (const DynTerm& t : num) {
    if (t.vars == 0) q = t.coef;
    else if (!x.divs.empty() && t.vars == 1u << (nv + x.divs.size() - 1) && t.coef == 1) last_div = true;
    else ++others;
  }
  if (last_div && others == 0 && !x.divs.back().ceil) {
    DynDiv& d = out->divs.back();
    int64_t shift;
    if (__builtin_mul_overflow(q, d.divisor, &shift) || __builtin_mul_overflow(d.divisor, s, &d.divisor) ||
        !add_const(&d.terms, shift))
      return false;
    normalize(&d.terms);
  } else {
    if (x.divs.size() >= kMaxDynDivs) return false;
    out->divs.push_back(DynDiv{false, s, num});
  }
  out->terms = {{1u << (nv + out->divs.size() - 1), 1}};
  if (!add_const(&out->terms, e)) return false;
  normalize(&out->terms);
  return true;
}

// x * y (their division atoms side by side; a variable atom in both would square: refused).
bool product(const DynExpr& x, const DynExpr& y, size_t nv, DynExpr* out) {
  if (x.divs.size() + y.divs.size() > kMaxDynDivs) return false;
  const uint32_t var_mask = (1u << nv) - 1;
  const size_t shift = x.divs.size();
  auto remap = [&](uint32_t v) { return (v & var_mask) | ((v & ~var_mask) << shift); };
  *out = x;
  for (const DynDiv& d : y.divs) {
    DynDiv r = d;
    for (DynTerm& t : r.terms) t.vars = remap(t.vars);
    out->divs.push_back(r);
  }
  out->terms.clear();
  for (const DynTerm& a : x.terms)
    for (const DynTerm& b : y.terms) {
      const uint32_t bv = remap(b.vars);
      int64_t c;
      if ((a.vars & bv) != 0 || __builtin_mul_overflow(a.coef, b.coef, &c)) return false;
      out->terms.push_back({a.vars | bv, c});
    }
  normalize(&out->terms);
  return out->terms.size() <= kMaxDynTerms;
}

bool matches(const std::vector<DynVar>& vars, const std::vector<std::vector<int64_t>>& points, const DynExpr& e,
             const std::vector<int64_t>& f) {
  for (size_t i = 0; i < points.size(); ++i) {
    int64_t v;
    if (!eval_dyn_expr(vars, e, points[i].data(), &v) || v != f[i]) return false;
  }
  return true;
}

// Möbius inversion over the corners: f(u) = sum_S b_S prod_{i in S} u_i with u_i = v_i - min_i;
// b_S = (alternating sum of f over the corners below S) / prod_{i in S} (max_i - min_i).
bool multilinear(const std::vector<DynVar>& vars, size_t corners, const std::vector<int64_t>& f, DynExpr* e) {
  e->terms.clear();
  e->divs.clear();
  for (uint32_t S = 0; S < corners; ++S) {
    __int128 delta = 0, width = 1;
    for (uint32_t T = S;; T = (T - 1) & S) {
      delta += (__builtin_popcount(S ^ T) & 1) ? -static_cast<__int128>(f[T]) : f[T];
      if (T == 0) break;
    }
    for (size_t i = 0; i < vars.size(); ++i)
      if (S >> i & 1) width *= vars[i].max - vars[i].min;
    if (delta % width != 0) return false;
    const __int128 b = delta / width;
    if (b > INT64_MAX || b < INT64_MIN) return false;
    if (b != 0) e->terms.push_back({S, static_cast<int64_t>(b)});
  }
  return true;
}

// f = m * x + e at every probe, m a nonzero integer.
bool linear_in(const std::vector<int64_t>& x, const std::vector<int64_t>& f, int64_t* m, int64_t* e) {
  size_t p = 0;
  while (p < x.size() && x[p] == x[0]) ++p;
  if (p == x.size()) return false;
  const __int128 df = static_cast<__int128>(f[p]) - f[0], dx = static_cast<__int128>(x[p]) - x[0];
  if (df % dx != 0 || df == 0) return false;
  const __int128 mm = df / dx, ee = f[0] - mm * x[0];
  if (mm > INT64_MAX || mm < INT64_MIN || ee > INT64_MAX || ee < INT64_MIN) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (mm * x[i] + ee != f[i]) return false;
  *m = static_cast<int64_t>(mm);
  *e = static_cast<int64_t>(ee);
  return true;
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }

// The formula of one varying integer: a multilinear polynomial of the variables; else, from the
// dims of the node's operands (`local`): m*X + e, floor((X + c)/s) + e (a strided window,
// ceil_mode being an offset), m*X*Y + e (a flatten); else m*X + e over every fitted dim.
bool fit_slot(const std::vector<DynVar>& vars, const std::vector<std::vector<int64_t>>& points, size_t corners,
              const std::vector<int64_t>& f, const std::vector<const Fitted*>& local,
              const std::vector<const Fitted*>& all, DynExpr* out, std::string* why) {
  const size_t nv = vars.size();
  if (multilinear(vars, corners, f, out) && matches(vars, points, *out, f)) return true;
  int64_t m, e;
  for (const Fitted* x : local)
    if (linear_in(x->f, f, &m, &e) && affine(x->e, m, e, out) && matches(vars, points, *out, f)) return true;
  constexpr int64_t kMaxStride = 64;
  for (const Fitted* x : local)
    for (int64_t s = 2; s <= kMaxStride; ++s)
      for (int64_t c = 0; c < s; ++c) {
        bool ok = true;
        const int64_t e0 = f[0] - floor_div(x->f[0] + c, s);
        for (size_t i = 1; ok && i < f.size(); ++i) ok = f[i] - floor_div(x->f[i] + c, s) == e0;
        if (ok && floordiv(x->e, c, s, e0, nv, out) && matches(vars, points, *out, f)) return true;
      }
  for (size_t a = 0; a < local.size(); ++a)
    for (size_t b = a + 1; b < local.size(); ++b) {
      std::vector<int64_t> xy;
      bool ok = true;
      for (size_t i = 0; ok && i < f.size(); ++i) {
        int64_t v;
        ok = !__builtin_mul_overflow(local[a]->f[i], local[b]->f[i], &v);
        xy.push_back(v);
      }
      DynExpr p;
      if (ok && linear_in(xy, f, &m, &e) && product(local[a]->e, local[b]->e, nv, &p) && affine(p, m, e, out) &&
          matches(vars, points, *out, f))
        return true;
    }
  for (const Fitted* x : all)
    if (linear_in(x->f, f, &m, &e) && affine(x->e, m, e, out) && matches(vars, points, *out, f)) return true;
  std::string at;
  for (size_t i = 0; i < f.size() && i < 8; ++i)
    at += (i ? ", " : "") + std::to_string(f[i]) + " at " + vars_str(vars, points[i]);
  *why = "it is " + at;
  return false;
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
  std::vector<int64_t> opt_at;
  for (const DynVar& v : vars) opt_at.push_back(v.opt);
  // Held-out points on the lattice min + j*g (g = 1: every size; a model that takes only
  // multiples of its stride is probed at multiples of a power of two dividing min and max).
  auto held_out_points = [&](int64_t g) {
    std::vector<std::vector<int64_t>> out;
    auto add = [&](const std::vector<int64_t>& at) {
      if (std::find(points.begin(), points.end(), at) == points.end() &&
          std::find(out.begin(), out.end(), at) == out.end())
        out.push_back(at);
    };
    auto held_out = [&](auto f) {
      std::vector<int64_t> at;
      for (const DynVar& v : vars) {
        const int64_t steps = (v.max - v.min) / g;
        at.push_back(v.min + g * std::max<int64_t>(0, std::min<int64_t>(steps, f(steps))));
      }
      add(at);
    };
    add(opt_at);
    held_out([](int64_t n) { return n / 2; });
    held_out([](int64_t) { return 1; });
    held_out([](int64_t n) { return n - 1; });
    held_out([](int64_t n) { return n / 3; });
    // Consecutive sizes near the ends, so a floor division's offset is pinned down.
    held_out([](int64_t) { return 2; });
    held_out([](int64_t) { return 3; });
    held_out([](int64_t n) { return n - 2; });
    // Inside the range at other residues, so a formula fitted near the ends is checked far from them.
    held_out([](int64_t n) { return n * 2 / 5 + 1; });
    held_out([](int64_t n) { return n * 3 / 4 - 1; });
    // One variable off its corners at a time, so a dim that is not multilinear in one variable
    // alone is caught even where the diagonal points above happen to fit.
    for (size_t i = 0; k > 1 && i < k; ++i) {
      std::vector<int64_t> at;
      for (size_t j = 0; j < k; ++j)
        at.push_back(j == i ? vars[j].min + g * ((vars[j].max - vars[j].min) / g / 2) : vars[j].max);
      add(at);
    }
    return out;
  };

  // The options of one point: the range's inputs fixed at `at`.
  auto at_point = [&](const BuildOptions& from, const std::vector<int64_t>& at) {
    BuildOptions o = from;
    o.min_shapes.clear();
    o.max_shapes.clear();
    for (const InputRange& r : ranges) {
      Shape s = r.min;
      for (size_t d = 0; d < s.size(); ++d)
        if (r.var[d] >= 0) s[d] = at[r.var[d]];
      o.shapes[r.name] = s;
    }
    return o;
  };
  // INT8/FP8 calibration runs once, at the --shapes point (the samples' shape); every other
  // point reads the same ranges from the calibration cache (a scratch one unless --calib-cache
  // is given), so all points quantize alike. A precision search (--precision best,
  // --accuracy-budget, the accuracy check of a calibrated build) runs there too, and every
  // point takes the precisions it chose.
  BuildOptions base = opts;
  if (needs_precision_search(opts)) {
    auto build_opt_point = [&](const BuildOptions& o, Plan* plan) {
      ir::Graph g;
      KILN_TRY(import(&g));
      return build_plan_from_graph(g, o, plan);
    };
    Plan searched;
    KILN_TRY_CTX(build_with_precision_search(build_opt_point, at_point(opts, opt_at), &searched, &base),
                 "choosing the layers' precisions at " + vars_str(vars, opt_at));
    base.min_shapes = opts.min_shapes;
    base.max_shapes = opts.max_shapes;
    base.shapes = opts.shapes;
    base.report = opts.report;
  }
  ScratchCalibCache scratch;
  if (base.calib_cache.empty() && base.has_calibration_data()) {
    KILN_TRY(scratch.create());
    base.calib_cache_dir = scratch.dir();
  }
  bool first_build = true;
  auto build_at = [&](const std::vector<int64_t>& at, Plan* plan) -> Status {
    BuildOptions o = at_point(base, at);
    if (!first_build) o.report = nullptr;  // the --shapes point's build speaks for all
    first_build = false;
    ir::Graph g;
    KILN_TRY(import(&g));
    KILN_TRY_CTX(build_plan_from_graph(g, o, plan), "building at " + vars_str(vars, at));
    // Subgraphs have no shape formulas (yet): their shapes are those of one build.
    for (const PlanNode& n : plan->nodes)
      if (k > 0 && !n.subgraphs.empty())
        return unsupported("node '" + n.name + "' (" + n.op + ") runs subgraphs at run time, which plans with "
                           "--min-shapes/--max-shapes cannot hold yet (fix the shapes, or --freeze the inputs an "
                           "If's condition depends on so it is decided at build time)");
    return Status::ok();
  };
  // The --shapes point first (calibration), then the corners: the user's own sizes, so a failure
  // there is the model's answer to them.
  std::vector<Plan> plans(corners);
  Plan opt_plan;
  const size_t opt_corner = static_cast<size_t>(std::find(points.begin(), points.end(), opt_at) - points.begin());
  KILN_TRY(build_at(opt_at, opt_corner < corners ? &plans[opt_corner] : &opt_plan));
  for (size_t i = 0; i < corners; ++i)
    if (i != opt_corner)
      KILN_TRY_CTX(build_at(points[i], &plans[i]), "the range's corner (--min-shapes/--max-shapes) does not build");
  // Held-out points: every size first; if the model refuses one (a detector that takes only
  // multiples of 32), the finest lattice min + j*2^n (2^n <= 64 dividing every min and max) at
  // which every probe builds.
  std::vector<int64_t> aligns{1};
  for (int64_t g = 2; g <= 64; g *= 2) {
    bool divides = true;
    for (const DynVar& v : vars) divides &= v.min % g == 0 && v.max % g == 0;
    if (divides) aligns.push_back(g);
  }
  std::string first_failure;
  int64_t align = 0;
  std::vector<Plan> held;
  std::vector<std::vector<int64_t>> held_at;
  for (size_t a = 0; a < aligns.size() && !align; ++a) {
    // The finest lattice that builds: the most sizes probed, so the formulas are pinned down best.
    const int64_t g = aligns[a];
    held_at = held_out_points(g);
    held.assign(held_at.size(), Plan());
    Status failed = Status::ok();
    for (size_t i = 0; i < held_at.size() && failed.is_ok(); ++i) {
      if (held_at[i] == opt_at) {
        held[i] = opt_plan;
        continue;
      }
      failed = build_at(held_at[i], &held[i]);
    }
    if (failed.is_ok()) {
      align = g;
    } else if (first_failure.empty()) {
      first_failure = failed.message();
    }
  }
  if (!align)
    return unsupported("the range's probe sizes do not build: " + first_failure +
                       (aligns.size() > 1 ? " (probing at min + multiples of 2 up to " + std::to_string(aligns.back()) +
                                                " failed too)"
                                          : " (min and max share no power-of-two factor to probe at multiples of)") +
                       "; the model does not take every size between --min-shapes and --max-shapes: give a min and "
                       "max that are multiples of the model's stride (e.g. 32 for a detector)");
  if (align > 1 && opts.report)
    std::fprintf(opts.report,
                 "dynamic shapes: the model does not take every size in the range (%s); probed at sizes min + "
                 "multiples of %lld, and a context refuses a size whose shapes do not fit\n",
                 first_failure.c_str(), static_cast<long long>(align));
  for (size_t i = 0; i < held.size(); ++i) {
    points.push_back(held_at[i]);
    plans.push_back(std::move(held[i]));
  }

  Plan& ref = plans[corners - 1];
  if (k == 0) {
    *out = std::move(ref);
    return Status::ok();
  }
  for (size_t i = 0; i < plans.size(); ++i)
    if (i != corners - 1) KILN_TRY_CTX(same_structure(ref, plans[i]), "at " + vars_str(vars, points[i]));

  // Tensor dims in data-flow order (inputs, then each node's outputs), then attributes, so a
  // node's input dims have their expressions when its outputs are fitted.
  std::vector<Slot> slots = slots_of(ref);
  {
    std::vector<int> rank(ref.tensors.size(), 1 << 30);
    int next = 0;
    for (int32_t t : ref.inputs) rank[t] = next++;
    for (const PlanNode& n : ref.nodes)
      for (int32_t t : n.outputs)
        if (t >= 0 && rank[t] == (1 << 30)) rank[t] = next++;
    std::stable_sort(slots.begin(), slots.end(), [&](const Slot& a, const Slot& b) {
      const bool ta = a.target == DynTarget::kTensorDim, tb = b.target == DynTarget::kTensorDim;
      if (ta != tb) return ta;
      return ta && rank[a.index] < rank[b.index];
    });
  }
  std::map<std::pair<int32_t, uint32_t>, Fitted> dims;  // varying tensor dims fitted so far
  for (const Slot& s : slots) {
    std::vector<int64_t> f;
    for (const Plan& p : plans) f.push_back(slot_value(p, s));
    bool varies = false;
    for (int64_t x : f) varies |= x != f[0];
    if (!varies) continue;
    // Candidate operands: the dims of the producing node's inputs (tensor dims) or of the
    // node's operands (attributes).
    std::vector<const Fitted*> local;
    auto add_tensor = [&](int32_t t) {
      if (t < 0) return;
      for (uint32_t d = 0; d < ref.tensors[t].shape.size(); ++d) {
        auto it = dims.find({t, d});
        if (it != dims.end() && std::find(local.begin(), local.end(), &it->second) == local.end())
          local.push_back(&it->second);
      }
    };
    for (const PlanNode& n : ref.nodes) {
      const bool owner = s.target == DynTarget::kTensorDim
                             ? std::count(n.outputs.begin(), n.outputs.end(), s.index) != 0
                             : &n == &ref.nodes[s.index];
      if (!owner) continue;
      for (int32_t t : n.inputs) add_tensor(t);
      if (s.target != DynTarget::kTensorDim)
        for (int32_t t : n.outputs) add_tensor(t);
    }
    std::vector<const Fitted*> all;
    for (const auto& [key, fit] : dims) all.push_back(&fit);
    DynExpr e;
    std::string why;
    if (!fit_slot(vars, points, corners, f, local, all, &e, &why))
      return unsupported(describe(ref, s) + " is not a function of the dynamic dims that kiln's shape formulas "
                         "can hold (a polynomial, multilinear with integer coefficients, of the dims and of floor "
                         "divisions by constants of the producing node's input dims): " + why +
                         "; narrow that dim's range to one value or change the model");
    e.target = s.target;
    e.index = s.index;
    e.attr = s.attr;
    e.pos = s.pos;
    if (s.target == DynTarget::kTensorDim) {
      // Memory is planned at the max corner: every dim must be largest there. A multilinear
      // function is monotone in u_i over the box iff it is at every corner; with divisions (of
      // nonnegative coefficients, as strides make them) the probes must at least agree.
      for (uint32_t c = 0; c < corners; ++c)
        for (size_t i = 0; i < k; ++i)
          if (!(c >> i & 1) && (f[c] > f[c | (1u << i)] || f[c] < 0))
            return unsupported(describe(ref, s) + " shrinks as '" + vars[i].name + "' grows (" + std::to_string(f[c]) +
                               " at " + vars_str(vars, points[c]) + ", " + std::to_string(f[c | (1u << i)]) + " at " +
                               vars_str(vars, points[c | (1u << i)]) +
                               "); memory is planned at the max shapes, so this is not supported");
      for (size_t i = corners; i < points.size(); ++i)
        if (f[i] > f[corners - 1] || f[i] < 0)
          return unsupported(describe(ref, s) + " is " + std::to_string(f[i]) + " at " + vars_str(vars, points[i]) +
                             ", beyond its " + std::to_string(f[corners - 1]) +
                             " at the max shapes; memory is planned at the max shapes, so this is not supported");
      dims[{s.index, s.pos}] = Fitted{e, f};
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
