#include <algorithm>
#include <set>

#include "compiler/passes/passes.h"

namespace kiln {

Status run_fix_input_shapes(ir::Graph& g, const PassContext& ctx) {
  for (const auto& frozen : ctx.options.frozen_inputs) {
    // Not a structured binding: clang before C++20 cannot capture one in the lambda below.
    const std::string& name = frozen.first;
    const HostTensor& value = frozen.second;
    auto it = std::find_if(g.inputs.begin(), g.inputs.end(), [&](ir::Value* v) { return v->name == name; });
    if (it == g.inputs.end()) return invalid_argument("--freeze names '" + name + "', which is not a model input");
    ir::Value* v = *it;
    if (value.dtype() != v->dtype)
      return invalid_argument("--freeze " + name + ": the model's input is " + dtype_name(v->dtype) + ", got " +
                              dtype_name(value.dtype()));
    v->constant = std::make_shared<HostTensor>(value);
    v->shape = value.shape();
    v->has_shape = true;
    v->is_graph_input = false;
    g.inputs.erase(it);
  }
  std::set<std::string> used;
  for (ir::Value* in : g.inputs) {
    auto it = ctx.options.shapes.find(in->name);
    if (it != ctx.options.shapes.end()) {
      used.insert(in->name);
      const Shape& given = it->second;
      if (in->has_shape && in->shape.size() != given.size())
        return invalid_argument("--shapes " + in->name + "=" + shape_str(given) + ": the model's input has rank " +
                                std::to_string(in->shape.size()));
      for (size_t i = 0; in->has_shape && i < given.size(); ++i)
        if (in->shape[i] >= 0 && in->shape[i] != given[i])
          return invalid_argument("--shapes " + in->name + "=" + shape_str(given) + ": dim " +
                                  std::to_string(i) + " is fixed to " + std::to_string(in->shape[i]) +
                                  " by the model");
      in->shape = given;
      in->has_shape = true;
    }
    if (!in->has_shape)
      return invalid_argument("input '" + in->name + "' has no shape in the model; fix it with --shapes " +
                              in->name + "=DIMS");
    for (int64_t d : in->shape)
      if (d < 0)
        return invalid_argument("input '" + in->name + "' has a dynamic dimension (shape " + [&] {
          std::string s;
          for (size_t i = 0; i < in->shape.size(); ++i)
            s += (i ? "x" : "") + (in->shape[i] < 0 ? std::string("?") : std::to_string(in->shape[i]));
          return s;
        }() + "); fix it with --shapes " + in->name + "=DIMS, or give its range with --min-shapes/--max-shapes");
    if (!dtype_is_storable(in->dtype))
      return unsupported("input '" + in->name + "' has dtype " + dtype_name(in->dtype) +
                         ", which kiln does not support");
  }
  for (const auto& [name, dims] : ctx.options.shapes)
    if (!used.count(name)) return invalid_argument("--shapes names '" + name + "', which is not a model input");
  return Status::ok();
}

}  // namespace kiln
