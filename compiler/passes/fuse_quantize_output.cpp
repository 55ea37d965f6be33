// QuantizeLinear(y) where y's producer can also write y quantized (CpuOp::quantized_output)
// becomes that producer's extra output (runtime/ops/quantized_output.h): the producer quantizes
// the values it has just stored, instead of a launch that reads them back. Post-training
// quantization leaves one before every quantized layer whose input is not another quantized
// layer's output: in BERT-base INT8 the LayerNorms feeding Q/K/V and the FFN (24 of its 36
// QuantizeLinears, each a launch of ~5.5 us at batch 1 on an H100).
#include <cstdio>

#include "compiler/passes/passes.h"
#include "compiler/passes/zero_point.h"
#include "runtime/core/float8.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/ops/quantized_output.h"

namespace kiln {
namespace {

bool one_value(const ir::Value* v) { return v && v->is_constant() && v->constant->numel() == 1; }

// A per-tensor QuantizeLinear of a float tensor with constant parameters into an 8-bit type.
bool per_tensor_quantize(const ir::Node& q) {
  if (q.dead || q.op_type != "QuantizeLinear" || q.outputs.size() != 1 || !q.outputs[0] || !q.input(0)) return false;
  const DType x = q.input(0)->dtype;
  if ((x != DType::kFloat32 && x != DType::kFloat16) || !quantized_output_dtype(q.outputs[0]->dtype)) return false;
  if (q.attrs.get_int("qmode", 0) != 0 || q.attrs.get_int("block_size", 0) != 0) return false;
  const ir::Value* scale = q.input(1);
  return one_value(scale) && scale->dtype == DType::kFloat32 && (!q.input(2) || one_value(q.input(2)));
}

// The zero point the quantized output takes: the QuantizeLinear's, or an explicit 0 of its type.
ir::Value* zero_point_of(ir::Graph& g, const ir::Node& q) {
  return q.input(2) ? q.input(2) : add_zero_point(g, q.outputs[0]->name + "_zero_point", q.outputs[0]->dtype);
}

}  // namespace

Status run_fuse_quantize_output(ir::Graph& g, const PassContext& ctx) {
  if (!ctx.opencl_target) return Status::ok();
  int fused = 0;
  for (const auto& node : g.nodes()) {
    ir::Node& q = *node;
    if (!per_tensor_quantize(q)) continue;
    ir::Node* p = q.input(0)->producer;
    if (!p || p->dead || p->outputs.empty() || p->outputs[0] != q.input(0) || p->attrs.has("quantized_output")) continue;
    const CpuOp* op = cpu_registry().info(p->runtime_op);
    if (!op || op->quantized_output_after == 0 || p->inputs.size() > op->quantized_output_after) continue;
    p->inputs.resize(op->quantized_output_after, nullptr);
    p->inputs.push_back(q.input(1));
    p->inputs.push_back(zero_point_of(g, q));
    p->outputs.push_back(q.outputs[0]);
    q.outputs[0]->producer = p;
    p->attrs.set("quantized_output", int64_t{1});
    if (float8_is_supported(q.outputs[0]->dtype)) p->attrs.set("saturate", q.attrs.get_int("saturate", 1));
    if (p->fused.empty()) p->fused.push_back(p->name);
    p->fused.push_back(q.name);
    q.dead = true;
    q.inputs.clear();
    q.outputs.clear();
    ++fused;
  }
  if (fused && ctx.options.report)
    std::fprintf(ctx.options.report, "quantize: %d QuantizeLinear node%s written by %s producer\n", fused,
                 fused == 1 ? "" : "s", fused == 1 ? "its" : "their");
  return Status::ok();
}

}  // namespace kiln
