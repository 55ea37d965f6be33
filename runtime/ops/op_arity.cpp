#include "runtime/ops/op_arity.h"

#include <map>
#include <string>

namespace kiln {
namespace {

struct Arity {
  int inputs;   // required (present, not -1) inputs
  int outputs;
};

const std::map<std::string, Arity>& arities() {
  static const std::map<std::string, Arity> table = {
      {"Reshape", {1, 1}},
      {"Elementwise", {1, 1}},
      {"Conv", {2, 1}},
      {"ConvTranspose", {2, 1}},
      {"Gemm", {2, 1}},
      {"MatMul", {2, 1}},
      {"Softmax", {1, 1}},
      {"LogSoftmax", {1, 1}},
      {"BatchNormalization", {5, 1}},
      {"InstanceNormalization", {3, 1}},
      {"LayerNormalization", {2, 1}},
      {"ReduceMean", {1, 1}},
      {"ReduceSum", {1, 1}},
      {"ReduceMax", {1, 1}},
      {"ReduceMin", {1, 1}},
      {"MaxPool", {1, 1}},
      {"AveragePool", {1, 1}},
      {"Transpose", {1, 1}},
      {"Concat", {1, 1}},
      {"Split", {1, 1}},
      {"Slice", {1, 1}},
      {"Gather", {2, 1}},
      {"Expand", {1, 1}},
      {"Tile", {1, 1}},
      {"Pad", {1, 1}},
      {"Resize", {1, 1}},
      {"QuantizeLinear", {2, 1}},
      {"DequantizeLinear", {2, 1}},
      {"DynamicQuantizeLinear", {1, 3}},
      {"MatMulInteger", {2, 1}},
      {"ConvInteger", {2, 1}},
      {"QLinearMatMul", {8, 1}},
      {"QLinearConv", {8, 1}},
      {"Fp8Conv", {5, 1}},
      {"Fp8MatMul", {5, 1}},
  };
  return table;
}

}  // namespace

Status check_node_operands(const PlanNode& node) {
  auto it = arities().find(node.op);
  // Ops without an entry are checked by their kernels.
  if (it == arities().end()) return Status::ok();
  const Arity& a = it->second;
  const std::string where = "node '" + node.name + "' (" + node.op + ")";
  if (static_cast<int>(node.inputs.size()) < a.inputs)
    return invalid_plan(where + " has " + std::to_string(node.inputs.size()) + " inputs; the op needs " +
                        std::to_string(a.inputs));
  for (int i = 0; i < a.inputs; ++i)
    if (node.inputs[i] < 0) return invalid_plan(where + " lacks its required input " + std::to_string(i));
  if (static_cast<int>(node.outputs.size()) < a.outputs)
    return invalid_plan(where + " has " + std::to_string(node.outputs.size()) + " outputs; the op needs " +
                        std::to_string(a.outputs));
  return Status::ok();
}

}  // namespace kiln
