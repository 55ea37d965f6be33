// Explicit quantization (Q/DQ models from quantization-aware training or from
// onnxruntime.quantization in QDQ format): DequantizeLinear -> Conv/MatMul/Gemm ->
// QuantizeLinear becomes one integer kernel, QLinearConv or QLinearMatMul, reading the int8
// activation before the DequantizeLinear and the int8 weights the weight-side DequantizeLinear
// was folded from (constant folding records them in Value::dequantized_from). No FP32
// convolution or matrix product is left between a dequantize and a quantize.
//
// FP8 (E4M3FN / E5M2) checkpoints: a Conv/MatMul/Gemm whose weights are dequantized from FP8
// becomes Fp8Conv / Fp8MatMul (compiler/ops/quantize_fp8.cpp) with the model's FP8 weights and
// scales stored as they are. Each activation side is taken as it comes: an FP8 DequantizeLinear
// before it is read through (the kernel decodes the FP8 input), an FP8 QuantizeLinear after it
// is done by the kernel's output cast; without them the kernel reads / writes float32, so
// weight-only FP8 models keep their weights in 8 bits too. The bias stays float32.
#include <algorithm>
#include <cmath>

#include "compiler/passes/passes.h"
#include "runtime/core/float8.h"

namespace kiln {
namespace {

bool scalar_const(const ir::Value* v) { return v && v->is_constant() && shape_numel(v->shape) == 1; }

bool int8ish(DType t) { return t == DType::kInt8 || t == DType::kUInt8; }

// The activation side: x = DequantizeLinear(xq, s, zp) with per-tensor constant parameters and
// xq of a type `accept` takes.
ir::Node* activation_dq(const ir::Value* x, bool (*accept)(DType) = int8ish) {
  ir::Node* d = x ? x->producer : nullptr;
  if (!d || d->dead || d->op_type != "DequantizeLinear" || !d->input(0) || d->input(0)->is_constant()) return nullptr;
  if (!scalar_const(d->input(1)) || (d->input(2) && !scalar_const(d->input(2)))) return nullptr;
  return accept(d->input(0)->dtype) ? d : nullptr;
}

using ConsumerMap = std::unordered_map<const ir::Value*, std::vector<ir::Node*>>;

// The single QuantizeLinear reading y, with per-tensor constant parameters and an output type
// `accept` takes.
ir::Node* output_q(const ir::Graph& g, const ir::Value* y, const ConsumerMap& readers,
                   bool (*accept)(DType) = int8ish) {
  auto it = readers.find(y);
  if (g.is_graph_output(y) || it == readers.end() || it->second.size() != 1) return nullptr;
  ir::Node* q = it->second[0];
  if (q->op_type != "QuantizeLinear" || q->input(0) != y || !scalar_const(q->input(1)) ||
      (q->input(2) && !scalar_const(q->input(2))) || q->outputs.size() != 1)
    return nullptr;
  return accept(q->outputs[0]->dtype) ? q : nullptr;
}

// Quantized weights of a type `accept` takes: per tensor, or per output channel (Conv: axis 0;
// MatMul [K,N]: axis 1).
bool quantized_weights(const ir::Value* w, int64_t channel_axis, bool (*accept)(DType)) {
  if (!w || !w->dequantized_from) return false;
  const ir::QuantSource& s = *w->dequantized_from;
  if (!accept(s.quantized->dtype())) return false;
  return shape_numel(s.scale->shape()) == 1 || (s.axis == channel_axis && s.scale->shape().size() == 1);
}
bool integer_weights(const ir::Value* w, int64_t channel_axis) { return quantized_weights(w, channel_axis, int8ish); }

// [R, C] -> [C, R] of a tensor of any element type (Gemm B^T into the matmul kernels' [K, N]).
std::shared_ptr<HostTensor> transposed(const HostTensor& t) {
  const int64_t rows = t.shape()[0], cols = t.shape()[1], es = static_cast<int64_t>(dtype_size(t.dtype()));
  auto out = std::make_shared<HostTensor>(t.dtype(), Shape{cols, rows});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::copy_n(t.data() + (r * cols + c) * es, es, out->data() + (c * rows + r) * es);
  return out;
}

std::shared_ptr<HostTensor> scalar_one() {
  auto t = std::make_shared<HostTensor>(DType::kFloat32, Shape{});
  t->as<float>()[0] = 1.f;
  return t;
}

// Conv/MatMul/Gemm `n` with FP8 weights -> Fp8Conv / Fp8MatMul (see the top of the file).
Status fold_fp8(ir::Graph& g, ir::Node* n, const ConsumerMap& readers, int64_t opset) {
  const bool conv = n->op_type == "Conv";
  const bool gemm = n->op_type == "Gemm";
  ir::Value* x = n->input(0);
  ir::Value* b = conv || gemm ? n->input(2) : nullptr;
  if (!x || (b && !b->is_constant()) || n->outputs.size() != 1) return Status::ok();
  ir::Node* dx = activation_dq(x, float8_is_supported);
  ir::Node* qy = output_q(g, n->outputs[0], readers, float8_is_supported);
  if (!dx && x->dtype != DType::kFloat32) return Status::ok();
  const ir::QuantSource& ws = *n->input(1)->dequantized_from;
  std::shared_ptr<const HostTensor> wq = ws.quantized;
  if (gemm && n->attrs.get_int("transB", 0)) wq = transposed(*wq);
  const int64_t channels = conv ? wq->shape()[0] : wq->shape()[1];

  ir::Node* fn = g.insert_node_before(n, conv ? "Fp8Conv" : "Fp8MatMul", n->name);
  fn->inputs = {dx ? dx->input(0) : x, dx ? dx->input(1) : g.add_constant(n->name + "_input_scale", scalar_one()),
                g.add_constant(n->name + "_weight_fp8", wq), g.add_constant(n->name + "_weight_scale", ws.scale),
                qy ? qy->input(1) : g.add_constant(n->name + "_output_scale", scalar_one())};
  if (b) {
    // A Gemm's C may be [N], [1, N] or one broadcast value; the kernel takes [N].
    auto bias = std::make_shared<HostTensor>(DType::kFloat32, Shape{channels});
    for (int64_t i = 0; i < channels; ++i)
      bias->as<float>()[i] = static_cast<float>(tensor_double_at(b->constant->view(), b->constant->numel() == 1 ? 0 : i));
    fn->inputs.push_back(g.add_constant(n->name + "_bias", bias));
  }
  if (conv) fn->attrs = n->attrs;
  ir::Value* y = qy ? qy->outputs[0] : n->outputs[0];
  fn->attrs.set("output_dtype", static_cast<int64_t>(y->dtype));
  fn->attrs.set("saturate", qy ? qy->attrs.get_int("saturate", 1) : int64_t{1});
  fn->outputs = {y};
  y->producer = fn;
  fn->fused = {n->name};
  if (dx) fn->fused.insert(fn->fused.begin(), dx->name);
  if (qy) fn->fused.push_back(qy->name);
  n->dead = true;
  if (qy) qy->dead = true;
  return infer_and_fold_node(*fn, g, opset);
}

std::shared_ptr<const HostTensor> zero_point_or_zero(const ir::QuantSource& s) {
  if (s.zero_point) return s.zero_point;
  auto z = std::make_shared<HostTensor>(s.quantized->dtype(), Shape{});
  std::fill(z->bytes().begin(), z->bytes().end(), uint8_t{0});
  return z;
}

}  // namespace

Status run_fold_qdq(ir::Graph& g, const PassContext&) {
  const int64_t opset = g.opsets.at("");
  auto readers = g.consumers();
  std::vector<ir::Node*> nodes;
  for (const auto& n : g.nodes()) nodes.push_back(n.get());
  for (ir::Node* n : nodes) {
    if (n->dead) continue;
    const bool conv = n->op_type == "Conv";
    const bool gemm = n->op_type == "Gemm";
    if (!conv && !gemm && n->op_type != "MatMul") continue;
    if (gemm && (n->attrs.get_int("transA", 0) || n->attrs.get_float("alpha", 1.f) != 1.f ||
                 (n->input(2) && n->attrs.get_float("beta", 1.f) != 1.f)))
      continue;
    ir::Value* w = n->input(1);
    const bool trans_b = gemm && n->attrs.get_int("transB", 0);
    if (!w || (!conv && w->shape.size() != 2)) continue;
    if (quantized_weights(w, conv || trans_b ? 0 : 1, float8_is_supported)) {
      KILN_TRY(fold_fp8(g, n, readers, opset));
      continue;
    }
    ir::Node* dx = activation_dq(n->input(0));
    ir::Node* qy = n->outputs.size() == 1 ? output_q(g, n->outputs[0], readers) : nullptr;
    if (!dx || !qy || !integer_weights(w, conv || trans_b ? 0 : 1)) continue;
    // A bias: int32 at the accumulator's scale (as QDQ exporters store it), or FP32.
    ir::Value* b = conv || gemm ? n->input(2) : nullptr;
    if (b && !b->is_constant()) continue;

    const ir::QuantSource& ws = *w->dequantized_from;
    std::shared_ptr<const HostTensor> wq = ws.quantized, w_scale = ws.scale, w_zp = zero_point_or_zero(ws);
    if (trans_b) wq = transposed(*wq);  // the per-N scale stays
    const float sx = static_cast<float>(tensor_double_at(dx->input(1)->constant->view(), 0));
    std::shared_ptr<const HostTensor> bias32;
    if (b && conv) {
      if (b->dequantized_from && b->dequantized_from->quantized->dtype() == DType::kInt32) {
        bias32 = b->dequantized_from->quantized;
      } else {
        auto t = std::make_shared<HostTensor>(DType::kInt32, b->shape);
        for (int64_t c = 0; c < t->numel(); ++c) {
          const double s = sx * tensor_double_at(w_scale->view(), shape_numel(w_scale->shape()) == 1 ? 0 : c);
          t->as<int32_t>()[c] = static_cast<int32_t>(std::nearbyint(tensor_double_at(b->constant->view(), c) / s));
        }
        bias32 = t;
      }
    }
    ir::Value* x_zp = dx->input(2) ? dx->input(2) : g.add_constant(dx->name + "_zero_point", zero_point_or_zero({dx->input(0)->constant, nullptr, nullptr, 0}));
    ir::Value* y_zp = qy->input(2) ? qy->input(2) : nullptr;
    if (!y_zp) {
      auto z = std::make_shared<HostTensor>(DType::kUInt8, Shape{});  // QuantizeLinear's default
      z->bytes()[0] = 0;
      y_zp = g.add_constant(qy->name + "_zero_point", z);
    }

    ir::Node* qn = g.insert_node_before(n, conv ? "QLinearConv" : "QLinearMatMul", n->name);
    qn->inputs = {dx->input(0), dx->input(1), x_zp, g.add_constant(n->name + "_weight_int8", wq),
                  g.add_constant(n->name + "_weight_scale", w_scale), g.add_constant(n->name + "_weight_zero_point", w_zp),
                  qy->input(1), y_zp};
    if (conv) {
      qn->attrs = n->attrs;
      if (bias32) qn->inputs.push_back(g.add_constant(n->name + "_bias_int32", bias32));
    }
    qn->fused = {dx->name, n->name, qy->name};
    ir::Node* bias_add = nullptr;
    if (gemm && b) {
      // QLinearMatMul has no bias: quantize A*B at the output scale, then add C in FP32 and
      // quantize again, so the consumers still read qy's int8 value.
      ir::Value* yq_nobias = g.add_unique_value(n->name + "_int8_no_bias");
      qn->outputs = {yq_nobias};
      yq_nobias->producer = qn;
      ir::Node* dq = g.insert_node_before(n, "DequantizeLinear", n->name + "_dequantize");
      ir::Value* yf = g.add_unique_value(n->name + "_no_bias");
      dq->inputs = {yq_nobias, qy->input(1), y_zp};
      dq->outputs = {yf};
      yf->producer = dq;
      bias_add = g.insert_node_before(n, "Add", n->name + "_bias");
      ir::Value* ybias = g.add_unique_value(n->name + "_with_bias");
      bias_add->inputs = {yf, b};
      bias_add->outputs = {ybias};
      ybias->producer = bias_add;
      ir::Node* rq = g.insert_node_before(n, "QuantizeLinear", n->name + "_requantize");
      rq->inputs = {ybias, qy->input(1), y_zp};
      rq->outputs = {qy->outputs[0]};
      qy->outputs[0]->producer = rq;
      for (ir::Node* added : {qn, dq, bias_add, rq}) KILN_TRY(infer_and_fold_node(*added, g, opset));
    } else {
      qn->outputs = {qy->outputs[0]};
      qy->outputs[0]->producer = qn;
      KILN_TRY(infer_and_fold_node(*qn, g, opset));
    }
    n->dead = true;
    qy->dead = true;
  }
  g.erase_dead();
  return Status::ok();
}

}  // namespace kiln
