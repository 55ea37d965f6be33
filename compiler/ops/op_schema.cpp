#include "compiler/ops/op_schema.h"

#include <unordered_set>

namespace kiln {

#define KILN_OP_FAMILY(family) void register_##family##_schemas(SchemaRegistry&);
#include "runtime/ops/ops.def"
#undef KILN_OP_FAMILY

const SchemaRegistry& schema_registry() {
  static const SchemaRegistry registry = [] {
    SchemaRegistry r;
#define KILN_OP_FAMILY(family) register_##family##_schemas(r);
#include "runtime/ops/ops.def"
#undef KILN_OP_FAMILY
    return r;
  }();
  return registry;
}

namespace {
// " (it is computed from the model inputs 'a', 'b': --freeze them)" when `v` is computed from
// graph inputs rather than one itself, so the user knows what to freeze.
std::string model_inputs_hint(const ir::Value* v) {
  if (!v || v->is_graph_input) return "";
  std::string names;
  std::vector<const ir::Value*> todo{v};
  std::unordered_set<const ir::Value*> seen;
  while (!todo.empty()) {
    const ir::Value* u = todo.back();
    todo.pop_back();
    if (!u || !seen.insert(u).second) continue;
    if (u->is_graph_input) names += (names.empty() ? "'" : ", '") + u->name + "'";
    if (u->producer)
      for (const ir::Value* in : u->producer->inputs) todo.push_back(in);
  }
  return names.empty() ? "" : " (it is computed from the model inputs " + names + ": --freeze them)";
}
}  // namespace

Status InferContext::const_ints(size_t i, std::vector<int64_t>* out) const {
  const HostTensor* t = const_input(i);
  if (!t) {
    ir::Value* v = input(i);
    return fail_unsupported("input " + std::to_string(i) + (v ? " ('" + v->name + "')" : "") +
                            " must be known at build time (a constant or computable from "
                            "shapes); kiln plans have static shapes" + model_inputs_hint(v));
  }
  if (!dtype_is_integer(t->dtype()) && t->dtype() != DType::kBool)
    return fail("input " + std::to_string(i) + " must be an integer tensor, got " +
                dtype_name(t->dtype()));
  *out = tensor_to_int64s(t->view());
  return Status::ok();
}

void InferContext::set_output(size_t i, DType dtype, Shape shape) {
  if (i >= node_.outputs.size() || !node_.outputs[i]) return;
  ir::Value* v = node_.outputs[i];
  v->dtype = dtype;
  v->shape = std::move(shape);
  v->has_shape = true;
}

Status InferContext::require_inputs(size_t min, size_t max) const {
  size_t n = node_.inputs.size();
  while (n > 0 && node_.inputs[n - 1] == nullptr) --n;
  if (n < min || n > max)
    return fail("expected " + (min == max ? std::to_string(min)
                                          : std::to_string(min) + " to " + std::to_string(max)) +
                " inputs, got " + std::to_string(n));
  for (size_t i = 0; i < min; ++i)
    if (!node_.inputs[i]) return fail("required input " + std::to_string(i) + " is missing");
  return Status::ok();
}

Status InferContext::normalize_axis(const std::string& attr, int64_t axis, int64_t rank, int64_t* out) const {
  if (axis < -rank || axis >= rank)
    return fail(attr + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  *out = axis < 0 ? axis + rank : axis;
  return Status::ok();
}

Status InferContext::require_dtype(size_t i, std::initializer_list<DType> dtypes) const {
  DType t = input_dtype(i);
  for (DType d : dtypes)
    if (d == t) return Status::ok();
  std::string allowed;
  for (DType d : dtypes) allowed += (allowed.empty() ? "" : ", ") + dtype_name(d);
  return fail_unsupported("input " + std::to_string(i) + " has dtype " + dtype_name(t) +
                          "; kiln supports " + allowed + " here");
}

Status resolve_op_version(const OpSchema* schema, const ir::Node& node, int64_t opset, int* out) {
  const std::string where = "node '" + node.name + "': op " + node.op_type + " (opset " +
                            std::to_string(opset) + ")";
  if (!schema) return unsupported(where + " is not supported by kiln");
  int v = 0;
  for (int s : schema->versions)
    if (s <= opset) v = s;
  if (v == 0) return invalid_model(where + " does not exist at that opset");
  if (v > kMaxSupportedOpset) {
    int newest = 0;
    for (int s : schema->versions)
      if (s <= kMaxSupportedOpset) newest = s;
    return unsupported(where + " resolves to " + node.op_type + "-" + std::to_string(v) +
                       ", which changed after opset " + std::to_string(kMaxSupportedOpset) +
                       "; kiln implements " + node.op_type + " up to version " +
                       std::to_string(newest));
  }
  *out = v;
  return Status::ok();
}

}  // namespace kiln
