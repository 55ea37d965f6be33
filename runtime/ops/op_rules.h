// The shape and attribute rule of every runtime op: from a node's input dtypes/shapes and its
// attributes, the dtypes and shapes its outputs must have. Backend-neutral and shared: the plan
// verifier (runtime/plan/plan_verifier.cpp) re-derives every node of a loaded plan with them,
// and the compiler runs the same check on every plan it writes, so a plan that passes cannot
// hand a kernel shapes or attributes it does not expect (which is what keeps a kernel inside its
// buffers: kernels index by the shapes and attributes they are given).
//
// A rule reads every attribute the kernels of its op read, through RuleContext's readers; an
// attribute no reader asked for, or one of the wrong kind, refuses the node (an edited name such
// as "activatiom" would otherwise be dropped silently). Registered per op family from
// runtime/ops/ops.def (runtime/ops/rules/<family>.cpp: register_<family>_rules).
#pragma once
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "runtime/core/attrs.h"
#include "runtime/core/checked_math.h"
#include "runtime/core/status.h"
#include "runtime/core/tensor.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/plan/plan.h"

namespace kiln {

// What a rule sees of one operand.
struct RuleTensor {
  DType dtype = DType::kUndefined;  // kUndefined: an optional operand left out
  Shape shape;
  const void* data = nullptr;       // the contents when the operand is a plan constant
  bool present() const { return dtype != DType::kUndefined; }
  TensorView view() const { return TensorView{dtype, shape, const_cast<void*>(data)}; }
};

class RuleContext {
 public:
  RuleContext(const PlanNode& node, const std::vector<RuleTensor>& inputs, const std::vector<RuleTensor>& planned)
      : node_(node), inputs_(inputs), planned_(planned), outputs_(planned.size()), numel_only_(planned.size(), -1) {}

  const PlanNode& node() const { return node_; }
  size_t num_inputs() const { return inputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i].present(); }
  const RuleTensor& input(size_t i) const { return inputs_[i]; }
  const Shape& shape(size_t i) const { return inputs_[i].shape; }
  DType dtype(size_t i) const { return inputs_[i].dtype; }
  int64_t rank(size_t i) const { return static_cast<int64_t>(inputs_[i].shape.size()); }
  size_t num_outputs() const { return outputs_.size(); }
  // The plan's own dtype and shape of output i. Ops whose output shape is a parameter that no
  // attribute records (Expand, Tile, Resize) check it against their inputs instead of deriving it.
  const RuleTensor& planned_output(size_t i) const { return planned_[i]; }

  // Operand counts: inputs [0, required) present, at most `max` inputs (present or not); the
  // number of outputs within [min, max].
  Status inputs(size_t required, size_t max) const;
  Status outputs(size_t min, size_t max) const;
  // Input i is present and has one of `dtypes`.
  Status dtype_in(size_t i, std::initializer_list<DType> dtypes) const;
  // Input i is present with exactly `dt`.
  Status dtype_is(size_t i, DType dt) const;

  // Attribute readers: absent yields the default; present with another kind is an error.
  Status int_attr(const char* name, int64_t def, int64_t* out);
  Status int_attr_in(const char* name, int64_t def, int64_t lo, int64_t hi, int64_t* out);
  Status float_attr(const char* name, float def, float* out);
  Status string_attr(const char* name, const std::string& def, std::string* out);
  Status ints_attr(const char* name, std::vector<int64_t>* out, bool* present = nullptr);
  Status floats_attr(const char* name, std::vector<float>* out, bool* present = nullptr);
  bool has_attr(const char* name) const { return node_.attrs.has(name); }

  // Errors name the node and op.
  Status fail(const std::string& msg) const;
  void set_output(size_t i, DType dtype, Shape shape);
  // Output i has `dtype` and `numel` elements in whatever shape the plan gives it (a byte copy
  // such as Reshape keeps no target shape in its attributes).
  void set_output_numel(size_t i, DType dtype, int64_t numel);

  // Used by check_node_rule.
  const std::set<std::string>& read_attrs() const { return read_; }
  const std::vector<RuleTensor>& derived_outputs() const { return outputs_; }
  // Per output: -1, or the element count when only that is derived (set_output_numel).
  const std::vector<int64_t>& derived_numel() const { return numel_only_; }

 private:
  const AttrValue* find(const char* name, AttrKind kind, Status* st);
  const PlanNode& node_;
  const std::vector<RuleTensor>& inputs_;
  const std::vector<RuleTensor>& planned_;
  std::vector<RuleTensor> outputs_;
  std::vector<int64_t> numel_only_;
  std::set<std::string> read_;
};

using OpRuleFn = Status (*)(RuleContext&);

class RuleRegistry {
 public:
  void add(const std::string& op, OpRuleFn fn) { rules_[op] = fn; }
  OpRuleFn find(const std::string& op) const {
    auto it = rules_.find(op);
    return it == rules_.end() ? nullptr : it->second;
  }
  const std::map<std::string, OpRuleFn>& all() const { return rules_; }

 private:
  std::map<std::string, OpRuleFn> rules_;
};

// Filled on first use from runtime/ops/ops.def.
const RuleRegistry& rule_registry();

// Runs `node`'s rule on `inputs` (one per node input, absent ones default) and compares the
// outputs it derives with `outputs` (the plan's dtypes and shapes). kInvalidPlan naming the
// node and the first disagreement; an op without a rule is refused too. With `unread` given,
// attributes the rule does not read are listed there instead of refused (the compiler drops
// them: a model may carry attributes no kernel reads).
Status check_node_rule(const PlanNode& node, const std::vector<RuleTensor>& inputs,
                       const std::vector<RuleTensor>& outputs, std::vector<std::string>* unread = nullptr);

// Helpers shared by the family rules.
namespace rules {
// Normalizes `axis` into [0, rank) (negative counts from the end); fails naming `what`.
Status axis_in(const RuleContext& c, const char* what, int64_t axis, int64_t rank, int64_t* out);
// Numpy broadcast of a and b with checked dims.
Status broadcast(const RuleContext& c, const Shape& a, const Shape& b, Shape* out);
// Product of dims, checked; fails naming `what`.
Status numel(const RuleContext& c, const Shape& s, const char* what, int64_t* out);
// "[1,2,3]"
std::string ints_str(const std::vector<int64_t>& v);
// Largest value a geometry attribute (kernel, stride, dilation, pad) may hold: OpenCL kernels
// index in 32-bit ints, and no real model comes near it.
constexpr int64_t kMaxGeometry = (int64_t{1} << 31) - 1;
// The fused epilogue attributes of the linear ops and their quantized forms (activation,
// activation_alpha/beta, residual; runtime/ops/linear_epilogue.h), read strictly: an unknown
// activation name is refused.
Status fused_epilogue(RuleContext& c, linear::Epilogue* e);
// The convolution attributes (group, kernel_shape, strides, dilations, pads: explicit) of the
// quantized convolutions ConvInteger/QLinearConv/Fp8Conv, read and checked against x and w
// (w [M, C/group, k...]), and the output shape they give; with the attribute `channels_last`
// (runtime/ops/channels_last.h, group 1 only), x, w and the output in that layout.
Status conv_geometry(RuleContext& c, const Shape& x, const Shape& w, Shape* out);
}  // namespace rules

}  // namespace kiln
