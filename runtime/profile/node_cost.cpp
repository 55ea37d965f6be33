#include "runtime/profile/node_cost.h"

namespace kiln {

NodeCost node_cost(const Plan& plan, const PlanNode& node) {
  NodeCost c;
  auto tensor = [&](int32_t t) -> const PlanTensor* { return t >= 0 ? &plan.tensors[t] : nullptr; };
  for (int32_t t : node.inputs)
    if (const PlanTensor* pt = tensor(t)) c.bytes += pt->bytes();
  for (int32_t t : node.outputs) c.bytes += plan.tensors[t].bytes();
  const PlanTensor* out = node.outputs.empty() ? nullptr : &plan.tensors[node.outputs[0]];
  const double out_elems = out ? static_cast<double>(shape_numel(out->shape)) : 0.0;
  const PlanTensor* in0 = node.inputs.empty() ? nullptr : tensor(node.inputs[0]);
  // The weights: input 1, or input 2 of the FP8 ops (after the input's scale).
  const size_t wi = node.op == "Fp8Conv" || node.op == "Fp8MatMul" ? 2 : 1;
  const PlanTensor* in1 = node.inputs.size() > wi ? tensor(node.inputs[wi]) : nullptr;

  // The integer kernels count their multiply-adds like FLOPs (TensorRT reports INT8 "ops" so).
  const bool qconv = node.op == "QLinearConv" || node.op == "ConvInteger";
  if (qconv && out) {
    const size_t qwi = node.op == "QLinearConv" ? 3 : 1;
    const PlanTensor* w = node.inputs.size() > qwi ? tensor(node.inputs[qwi]) : nullptr;
    double kernel = 1;
    if (w)
      for (size_t i = 1; i < w->shape.size(); ++i) kernel *= static_cast<double>(w->shape[i]);
    c.flops = 2.0 * out_elems * kernel;
  } else if ((node.op == "QLinearMatMul" || node.op == "MatMulInteger") && in0 && out) {
    c.flops = 2.0 * out_elems * static_cast<double>(in0->shape.empty() ? 1 : in0->shape.back());
  } else if ((node.op == "Conv" || node.op == "ConvTranspose" || node.op == "Fp8Conv") && in0 && in1 && out) {
    // W is [Cout, Cin/g, k...] (Conv) or [Cin, Cout/g, k...] (ConvTranspose): each output
    // element of a Conv, or input element of a ConvTranspose, meets prod(W.shape[1:]) weights.
    double kernel = 1;
    for (size_t i = 1; i < in1->shape.size(); ++i) kernel *= static_cast<double>(in1->shape[i]);
    const double points = node.op != "ConvTranspose" ? out_elems : static_cast<double>(shape_numel(in0->shape));
    c.flops = 2.0 * points * kernel;
  } else if ((node.op == "Gemm" || node.op == "MatMul" || node.op == "Fp8MatMul") && in0 && out) {
    // K is the contracted dim of A: its last dim (or first when transA).
    int64_t k = in0->shape.empty() ? 1 : in0->shape.back();
    if (node.op == "Gemm" && node.attrs.get_int("transA", 0) && in0->shape.size() == 2) k = in0->shape[0];
    c.flops = 2.0 * out_elems * static_cast<double>(k);
  } else if ((node.op == "LSTM" || node.op == "GRU" || node.op == "RNN") && in0 && in1 && node.inputs.size() > 2 &&
             node.inputs[2] >= 0) {  // every step of every sequence: W x + R h (runtime/backends/recurrent_geometry.h)
    const double steps = in0->shape.size() == 3 && in0->shape[2] ? shape_numel(in0->shape) / in0->shape[2] : 0;
    c.flops = 2.0 * steps * static_cast<double>(shape_numel(in1->shape) + shape_numel(plan.tensors[node.inputs[2]].shape));
  } else {
    c.flops = out_elems;
  }
  return c;
}

}  // namespace kiln
