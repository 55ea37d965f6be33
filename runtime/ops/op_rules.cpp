#include "runtime/ops/op_rules.h"

#include <algorithm>

#include "runtime/ops/channels_last.h"
#include "runtime/ops/rules/linear_rules.h"

namespace kiln {

#define KILN_OP_FAMILY(family) void register_##family##_rules(RuleRegistry&);
#include "runtime/ops/ops.def"
#undef KILN_OP_FAMILY

const RuleRegistry& rule_registry() {
  static const RuleRegistry registry = [] {
    RuleRegistry r;
#define KILN_OP_FAMILY(family) register_##family##_rules(r);
#include "runtime/ops/ops.def"
#undef KILN_OP_FAMILY
    return r;
  }();
  return registry;
}

namespace {

const char* kind_name(AttrKind k) {
  switch (k) {
    case AttrKind::kInt: return "an int";
    case AttrKind::kFloat: return "a float";
    case AttrKind::kString: return "a string";
    case AttrKind::kInts: return "ints";
    case AttrKind::kFloats: return "floats";
    case AttrKind::kTensor: return "a tensor";
  }
  return "?";
}

std::string type_str(const RuleTensor& t) { return dtype_name(t.dtype) + " " + shape_str(t.shape); }

}  // namespace

Status RuleContext::fail(const std::string& msg) const {
  return invalid_plan("node '" + node_.name + "' (" + node_.op + "): " + msg);
}

Status RuleContext::inputs(size_t required, size_t max) const {
  if (inputs_.size() < required || inputs_.size() > max)
    return fail("has " + std::to_string(inputs_.size()) + " inputs; the op takes " +
                (required == max ? std::to_string(max) : std::to_string(required) + " to " + std::to_string(max)));
  for (size_t i = 0; i < required; ++i)
    if (!inputs_[i].present()) return fail("lacks its required input " + std::to_string(i));
  return Status::ok();
}

Status RuleContext::outputs(size_t min, size_t max) const {
  if (outputs_.size() < min || outputs_.size() > max)
    return fail("has " + std::to_string(outputs_.size()) + " outputs; the op makes " +
                (min == max ? std::to_string(max) : std::to_string(min) + " to " + std::to_string(max)));
  return Status::ok();
}

Status RuleContext::dtype_in(size_t i, std::initializer_list<DType> dtypes) const {
  if (!has_input(i)) return fail("lacks input " + std::to_string(i));
  for (DType d : dtypes)
    if (inputs_[i].dtype == d) return Status::ok();
  std::string allowed;
  for (DType d : dtypes) allowed += (allowed.empty() ? "" : ", ") + dtype_name(d);
  return fail("input " + std::to_string(i) + " is " + dtype_name(inputs_[i].dtype) + "; the op takes " + allowed);
}

Status RuleContext::dtype_is(size_t i, DType dt) const { return dtype_in(i, {dt}); }

const AttrValue* RuleContext::find(const char* name, AttrKind kind, Status* st) {
  read_.insert(name);
  auto it = node_.attrs.all().find(name);
  if (it == node_.attrs.all().end()) return nullptr;
  if (attr_kind(it->second) != kind) {
    *st = fail(std::string("attribute '") + name + "' is " + kind_name(attr_kind(it->second)) + ", expected " +
               kind_name(kind));
    return nullptr;
  }
  return &it->second;
}

Status RuleContext::int_attr(const char* name, int64_t def, int64_t* out) {
  Status st;
  const AttrValue* v = find(name, AttrKind::kInt, &st);
  *out = v ? std::get<int64_t>(*v) : def;
  return st;
}

Status RuleContext::int_attr_in(const char* name, int64_t def, int64_t lo, int64_t hi, int64_t* out) {
  KILN_TRY(int_attr(name, def, out));
  if (*out < lo || *out > hi)
    return fail(std::string("attribute '") + name + "' = " + std::to_string(*out) + " is outside [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return Status::ok();
}

Status RuleContext::float_attr(const char* name, float def, float* out) {
  Status st;
  const AttrValue* v = find(name, AttrKind::kFloat, &st);
  *out = v ? std::get<float>(*v) : def;
  return st;
}

Status RuleContext::string_attr(const char* name, const std::string& def, std::string* out) {
  Status st;
  const AttrValue* v = find(name, AttrKind::kString, &st);
  *out = v ? std::get<std::string>(*v) : def;
  return st;
}

Status RuleContext::ints_attr(const char* name, std::vector<int64_t>* out, bool* present) {
  Status st;
  const AttrValue* v = find(name, AttrKind::kInts, &st);
  if (present) *present = v != nullptr;
  if (v) *out = std::get<std::vector<int64_t>>(*v);
  else out->clear();
  return st;
}

Status RuleContext::floats_attr(const char* name, std::vector<float>* out, bool* present) {
  Status st;
  const AttrValue* v = find(name, AttrKind::kFloats, &st);
  if (present) *present = v != nullptr;
  if (v) *out = std::get<std::vector<float>>(*v);
  else out->clear();
  return st;
}

void RuleContext::set_output(size_t i, DType dtype, Shape shape) {
  if (i < outputs_.size()) outputs_[i] = RuleTensor{dtype, std::move(shape), nullptr};
}

void RuleContext::set_output_numel(size_t i, DType dtype, int64_t numel) {
  if (i >= outputs_.size()) return;
  outputs_[i] = RuleTensor{dtype, {numel}, nullptr};
  numel_only_[i] = numel;
}

Status check_node_rule(const PlanNode& node, const std::vector<RuleTensor>& inputs,
                       const std::vector<RuleTensor>& outputs, std::vector<std::string>* unread) {
  OpRuleFn rule = rule_registry().find(node.op);
  if (!rule)
    return unsupported("node '" + node.name + "': this runtime has no op '" + node.op +
                       "' (a plan from a newer kiln, or an edited one)");
  RuleContext c(node, inputs, outputs);
  KILN_TRY(rule(c));
  for (const auto& [name, value] : node.attrs.all()) {
    if (c.read_attrs().count(name)) continue;
    if (unread) unread->push_back(name);
    else
      return c.fail("unknown attribute '" + name + "' (the plan was edited or written by a newer kiln)");
  }
  const std::vector<RuleTensor>& want = c.derived_outputs();
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!want[i].present()) return c.fail("output " + std::to_string(i) + " is not one the op makes");
    if (c.derived_numel()[i] >= 0) {
      int64_t n;
      if (want[i].dtype != outputs[i].dtype || !numel_ok(outputs[i].shape, &n) || n != c.derived_numel()[i])
        return c.fail("output " + std::to_string(i) + " is " + type_str(outputs[i]) + " in the plan, but the inputs give " +
                      dtype_name(want[i].dtype) + " with " + std::to_string(c.derived_numel()[i]) + " elements");
      continue;
    }
    if (want[i].dtype != outputs[i].dtype || want[i].shape != outputs[i].shape)
      return c.fail("output " + std::to_string(i) + " is " + type_str(outputs[i]) +
                    " in the plan, but the inputs and attributes give " + type_str(want[i]));
  }
  return Status::ok();
}

namespace rules {

Status axis_in(const RuleContext& c, const char* what, int64_t axis, int64_t rank, int64_t* out) {
  const int64_t a = axis < 0 && axis >= -rank ? axis + rank : axis;
  if (a < 0 || a >= rank)
    return c.fail(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  *out = a;
  return Status::ok();
}

Status broadcast(const RuleContext& c, const Shape& a, const Shape& b, Shape* out) {
  const size_t r = std::max(a.size(), b.size());
  Shape s(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      return c.fail("shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
    s[i] = da == 1 ? db : da;
  }
  *out = std::move(s);
  return Status::ok();
}

Status numel(const RuleContext& c, const Shape& s, const char* what, int64_t* out) {
  if (!numel_ok(s, out)) return c.fail(std::string(what) + " " + shape_str(s) + " has too many elements");
  return Status::ok();
}

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// The convolution attributes of ConvInteger/QLinearConv/Fp8Conv and the output shape they give
// x and w (w [M, C/group, k...]).
Status conv_geometry(RuleContext& c, const Shape& x_in, const Shape& w_in, Shape* out) {
  int64_t channels_last;
  KILN_TRY(c.int_attr_in(kAttrChannelsLast, 0, 0, 1, &channels_last));
  // Channels-last (runtime/ops/channels_last.h): checked in ONNX's order, the output turned back.
  const Shape x = channels_last ? channels_first_shape(x_in) : x_in;
  const Shape w = channels_last ? channels_first_shape(w_in) : w_in;
  int64_t group;
  std::vector<int64_t> ks, st, dl, pd;
  KILN_TRY(c.int_attr_in("group", 1, 1, rules::kMaxGeometry, &group));
  KILN_TRY(c.ints_attr("kernel_shape", &ks));
  KILN_TRY(c.ints_attr("strides", &st));
  KILN_TRY(c.ints_attr("dilations", &dl));
  KILN_TRY(c.ints_attr("pads", &pd));
  if (x.size() < 3 || x.size() > 5 || w.size() != x.size())
    return c.fail("x " + shape_str(x) + " and w " + shape_str(w) + " do not fit a 1- to 3-D convolution");
  const size_t nd = x.size() - 2;
  if (ks.size() != nd || st.size() != nd || dl.size() != nd || pd.size() != 2 * nd)
    return c.fail("kernel_shape, strides, dilations and pads must be explicit for " + std::to_string(nd) + " spatial dims");
  int64_t wc;
  if (w[0] % group || x[1] % group || !mul_ok(w[1], group, &wc) || wc != x[1])
    return c.fail("w " + shape_str(w) + " with group " + std::to_string(group) + " does not fit x " + shape_str(x));
  *out = {x[0], w[0]};
  for (size_t d = 0; d < nd; ++d) {
    int64_t o;
    if (ks[d] != w[2 + d] || !linear::conv_extent(false, x[2 + d], ks[d], st[d], dl[d], pd[d], pd[nd + d], 0, &o))
      return c.fail("kernel_shape " + rules::ints_str(ks) + ", strides " + rules::ints_str(st) + ", dilations " +
                    rules::ints_str(dl) + " and pads " + rules::ints_str(pd) + " do not fit x " + shape_str(x) +
                    " and w " + shape_str(w));
    out->push_back(o);
  }
  if (channels_last) {
    if (group != 1) return c.fail("channels_last takes group 1, not " + std::to_string(group));
    *out = channels_last_shape(*out);
  }
  return Status::ok();
}

// The fused epilogue attributes, read strictly (every name the kernels read).
Status fused_epilogue(RuleContext& c, linear::Epilogue* e) {
  std::string act;
  int64_t residual;
  KILN_TRY(c.string_attr(linear::kAttrActivation, "", &act));
  KILN_TRY(c.float_attr(linear::kAttrActAlpha, 0.f, &e->act_alpha));
  KILN_TRY(c.float_attr(linear::kAttrActBeta, 0.f, &e->act_beta));
  KILN_TRY(c.int_attr_in(linear::kAttrResidual, linear::kResidualNone, linear::kResidualNone,
                         linear::kResidualAfterActivation, &residual));
  e->residual = static_cast<int>(residual);
  e->act = linear::Activation::kNone;
  if (!act.empty()) {
    e->act = linear::activation_from_name(act);
    if (e->act == linear::Activation::kNone) return c.fail("unknown fused activation '" + act + "'");
  }
  return Status::ok();
}

}  // namespace rules

}  // namespace kiln
