#include <algorithm>

#include "compiler/ops/op_schema.h"
#include "compiler/passes/passes.h"
#include "runtime/core/checked_math.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/plan/plan_memory.h"

namespace kiln {
namespace {

// Evaluates `n` on the CPU backend (the same kernels the runtime uses) and stores the results
// as the outputs' constant contents.
Status fold_node(ir::Node& n) {
  PlanNode pn;
  pn.name = n.name;
  pn.op = n.runtime_op;
  pn.attrs = n.attrs;
  std::vector<TensorView> in;
  for (ir::Value* v : n.inputs) in.push_back(v ? v->constant->view() : TensorView{});
  std::vector<std::shared_ptr<HostTensor>> results;
  std::vector<TensorView> out;
  for (ir::Value* v : n.outputs) {
    if (v && !v->constant) {
      // A constant is held in memory (and in the plan): its size is checked before it is
      // allocated, so a tiny model cannot make the compiler allocate terabytes.
      int64_t numel;
      if (!numel_ok(v->shape, &numel) || static_cast<uint64_t>(numel) > host_physical_memory() / std::max<size_t>(1, dtype_size(v->dtype)))
        return out_of_memory("constant folding output '" + v->name + "' " + dtype_name(v->dtype) + " " +
                             shape_str(v->shape) + " would not fit in the host's memory");
      try {
        results.push_back(std::make_shared<HostTensor>(v->dtype, v->shape));
      } catch (const std::bad_alloc&) {
        return out_of_memory("constant folding: no host memory for output '" + v->name + "' (" +
                             byte_size_str(static_cast<uint64_t>(numel) * dtype_size(v->dtype)) + ")");
      }
    } else {
      results.push_back(nullptr);
    }
    out.push_back(results.back() ? results.back()->view() : TensorView{});
  }
  KILN_TRY(run_cpu_kernel(pn, in, out).with_context("constant folding"));
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (results[i]) n.outputs[i]->constant = results[i];
  return Status::ok();
}

bool all_inputs_constant(const ir::Node& n) {
  for (ir::Value* v : n.inputs)
    if (v && !v->constant) return false;
  return true;
}

}  // namespace

Status infer_and_fold_node(ir::Node& n, ir::Graph& g, int64_t opset) {
  if (!n.domain.empty())
    return unsupported("node '" + n.name + "': op " + n.op_type + " of domain '" + n.domain +
                       "' is not supported (kiln implements the default ONNX domain)");
  const OpSchema* schema = schema_registry().find(n.op_type);
  KILN_TRY(resolve_op_version(schema, n, opset, &n.version));
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    ir::Value* v = n.inputs[i];
    if (v && !v->has_shape) return internal_error(n.describe() + ": input '" + v->name + "' has no shape");
    if (v && !dtype_is_storable(v->dtype))
      return unsupported(n.describe() + ": input '" + v->name + "' has dtype " + dtype_name(v->dtype) +
                         ", which kiln does not support");
  }
  if (!n.subgraphs.empty() && !schema->subgraphs)
    return invalid_model(n.describe() + ": attribute '" + n.subgraphs[0].first + "' is a graph, which " + n.op_type +
                         " does not take");
  InferContext ctx(n, g);
  KILN_TRY(schema->infer(ctx));
  for (ir::Value* v : n.outputs) {
    // Shape rules set every output their op has: one left unset is an output the model gave the
    // node beyond those (Softmax with two outputs, say).
    if (v && !v->has_shape)
      return invalid_model(n.describe() + ": output '" + v->name + "' is not an output " + n.op_type + " has");
    // Bounded like plan tensors (2^48 elements of the non-empty dims): a shape rule fed huge
    // attribute values must not hand later passes dims whose products overflow.
    uint64_t nonzero = 1;
    for (int64_t d : v ? v->shape : Shape{}) {
      if (d < 0 || (d > 0 && nonzero > (uint64_t{1} << 48) / static_cast<uint64_t>(d)))
        return unsupported(n.describe() + ": output '" + v->name + "' would have the shape " + shape_str(v->shape) +
                           ", beyond what kiln can hold");
      if (d > 0) nonzero *= static_cast<uint64_t>(d);
    }
  }

  // A constant beyond kMaxComputedConstantBytes is not folded: the node stays, to run at run
  // time (where the plan's memory bound applies), rather than allocate it here.
  bool small = true;
  for (ir::Value* v : n.outputs) small &= !v || computed_constant_fits(v->dtype, v->shape);
  if (schema->foldable && small && all_inputs_constant(n) && cpu_registry().find(n.runtime_op)) {
    bool pending = false;
    for (ir::Value* v : n.outputs) pending |= v && !v->constant;
    if (pending) {
      KILN_TRY(fold_node(n).with_context(n.describe()));
      if (n.op_type == "DequantizeLinear" && n.outputs.size() == 1 && n.outputs[0] && n.input(0) && n.input(1)) {
        auto src = std::make_shared<ir::QuantSource>();
        src->quantized = n.input(0)->constant;
        src->scale = n.input(1)->constant;
        if (n.input(2)) src->zero_point = n.input(2)->constant;
        src->axis = n.attrs.get_int("axis", 1);
        n.outputs[0]->dequantized_from = src;
      }
    }
  }
  return Status::ok();
}

Status infer_graph(ir::Graph& g) {
  auto opset_it = g.opsets.find("");
  if (opset_it == g.opsets.end()) return invalid_model("model does not import the default ONNX opset");
  // By index: inlining an If inserts its branch's nodes right after it, to be inferred next;
  // unrolling a Loop inserts copies of its body already inferred (version set).
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    ir::Node& n = *g.nodes()[i];
    if (!n.dead && n.version == 0) KILN_TRY(infer_and_fold_node(n, g, opset_it->second));
  }
  return Status::ok();
}

Status run_infer_and_fold(ir::Graph& g, const PassContext&) { return infer_graph(g); }

}  // namespace kiln
