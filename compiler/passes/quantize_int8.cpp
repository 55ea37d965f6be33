// INT8 post-training quantization (--precision int8). Runs after BatchNormalization folding so
// the calibrated ranges and the quantized weights are those of the folded convolutions.
//
// Every Conv, MatMul and linear-layer Gemm with constant float32 weights becomes
//   QuantizeLinear(x, s_x) -> QLinearConv / QLinearMatMul (int8 weights, int32 accumulation,
//   int32 bias, requantization to s_y) -> DequantizeLinear(y, s_y)
// with symmetric ranges: activations per tensor (scale = calibrated amax / 127), weights per
// output channel (Conv) or column (MatMul) (scale = max|w| / 127). The integer kernels are the
// quantize family's, on both backends; the weights are stored as int8 in the plan.
#include <cmath>
#include <memory>
#include <set>

#include "compiler/passes/passes.h"
#include "compiler/quant/calibrate.h"
#include "compiler/quant/precision.h"

namespace kiln {
namespace {

// Gemm qualifies in the form a linear layer has: Y = A * B(^T) + C with alpha = beta = 1, no
// transposed A, and a 1-D (or [1, N]) constant C, which stays an FP32 Add after dequantization.
bool gemm_as_matmul(const ir::Node& n) {
  if (n.op_type != "Gemm" || n.attrs.get_int("transA", 0) != 0 || n.attrs.get_float("alpha", 1.f) != 1.f) return false;
  const ir::Value* c = n.input(2);
  if (!c) return true;
  if (!c->is_constant() || n.attrs.get_float("beta", 1.f) != 1.f) return false;
  const Shape& s = c->shape;
  return s.size() == 1 || (s.size() == 2 && s[0] == 1);
}

bool quantizable(const ir::Node& n) {
  if (n.op_type != "Conv" && n.op_type != "MatMul" && !gemm_as_matmul(n)) return false;
  const ir::Value* x = n.input(0);
  const ir::Value* w = n.input(1);
  if (!x || !w || x->is_constant() || !w->is_constant() || x->dtype != DType::kFloat32 || w->dtype != DType::kFloat32)
    return false;
  if (n.op_type != "Conv" && w->shape.size() != 2) return false;
  if (n.op_type == "Conv" && n.input(2) && !n.input(2)->is_constant()) return false;
  return n.outputs.size() == 1 && n.outputs[0] && n.outputs[0]->dtype == DType::kFloat32;
}

std::shared_ptr<HostTensor> scalar_f32(float x) {
  auto t = std::make_shared<HostTensor>(DType::kFloat32, Shape{});
  t->as<float>()[0] = x;
  return t;
}

std::shared_ptr<HostTensor> scalar_i8(int8_t x) {
  auto t = std::make_shared<HostTensor>(DType::kInt8, Shape{});
  t->as<int8_t>()[0] = x;
  return t;
}

float activation_scale(double amax) { return amax > 0 ? static_cast<float>(amax / 127.0) : 1.0f; }

// Symmetric int8 weights with one scale per `channels` slice: Conv weights [M, ...] per row,
// MatMul weights [K, N] per column.
void quantize_weights(const HostTensor& w, bool per_column, std::shared_ptr<HostTensor>* wq,
                      std::shared_ptr<HostTensor>* scales) {
  const int64_t channels = per_column ? w.shape()[1] : w.shape()[0];
  const int64_t n = w.numel();
  const float* src = w.as<float>();
  auto channel_of = [&](int64_t i) { return per_column ? i % channels : i / (n / channels); };
  *scales = std::make_shared<HostTensor>(DType::kFloat32, Shape{channels});
  float* s = (*scales)->as<float>();
  for (int64_t c = 0; c < channels; ++c) s[c] = 0;
  for (int64_t i = 0; i < n; ++i) s[channel_of(i)] = std::max(s[channel_of(i)], std::fabs(src[i]));
  for (int64_t c = 0; c < channels; ++c) s[c] = s[c] > 0 ? s[c] / 127.f : 1.f;
  *wq = std::make_shared<HostTensor>(DType::kInt8, w.shape());
  int8_t* q = (*wq)->as<int8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::nearbyint(src[i] / s[channel_of(i)]);
    q[i] = static_cast<int8_t>(std::min(127.f, std::max(-127.f, v)));
  }
}

}  // namespace

Status run_quantize_int8(ir::Graph& g, const PassContext& ctx) {
  const BuildOptions& opts = ctx.options;
  std::vector<ir::Node*> targets;
  std::vector<std::string> tensors;
  std::set<std::string> seen;
  for (const auto& n : g.nodes()) {
    if (n->dead || node_precision(*n, opts) != Precision::kInt8 || !quantizable(*n)) continue;
    targets.push_back(n.get());
    for (const ir::Value* v : {n->input(0), n->outputs[0]})
      if (seen.insert(v->name).second) tensors.push_back(v->name);
  }
  if (targets.empty()) return Status::ok();
  std::map<std::string, TensorRange> ranges;
  KILN_TRY(calibrate_ranges(g, tensors, opts, opts.report, &ranges));

  const int64_t opset = g.opsets.at("");
  for (ir::Node* n : targets) {
    ir::Value* x = n->input(0);
    ir::Value* y = n->outputs[0];
    const bool conv = n->op_type == "Conv";
    const bool gemm = n->op_type == "Gemm";
    double y_amax = ranges[y->name].amax;
    if (gemm && n->input(2)) {
      // The integer kernel produces A*B before C is added: widen the calibrated range of
      // A*B + C by max|C| so the bias-free product is not clipped.
      const HostTensor& c = *n->input(2)->constant;
      double cmax = 0;
      for (int64_t i = 0; i < c.numel(); ++i) cmax = std::max(cmax, std::fabs(static_cast<double>(c.as<float>()[i])));
      y_amax += cmax;
    }
    const float sx = activation_scale(ranges[x->name].amax), sy = activation_scale(y_amax);
    std::shared_ptr<HostTensor> wq, sw;
    std::shared_ptr<const HostTensor> w = n->input(1)->constant;
    if (gemm && n->attrs.get_int("transB", 0)) {  // [N, K] -> [K, N] for QLinearMatMul
      auto t = std::make_shared<HostTensor>(DType::kFloat32, Shape{w->shape()[1], w->shape()[0]});
      const int64_t rows = w->shape()[0], cols = w->shape()[1];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) t->as<float>()[c * rows + r] = w->as<float>()[r * cols + c];
      w = t;
    }
    quantize_weights(*w, !conv, &wq, &sw);
    ir::Value* zero = g.add_constant(n->name + "_zero_point", scalar_i8(0));
    ir::Value* x_scale = g.add_constant(x->name + "_scale", scalar_f32(sx));
    ir::Value* y_scale = g.add_constant(y->name + "_scale", scalar_f32(sy));

    ir::Node* q = g.insert_node_before(n, "QuantizeLinear", n->name + "_quantize_input");
    ir::Value* xq = g.add_unique_value(x->name + "_int8");
    q->inputs = {x, x_scale, zero};
    q->outputs = {xq};
    xq->producer = q;

    ir::Node* qn = g.insert_node_before(n, conv ? "QLinearConv" : "QLinearMatMul", n->name);
    ir::Value* yq = g.add_unique_value(y->name + "_int8");
    qn->inputs = {xq, x_scale, zero, g.add_constant(n->name + "_weight_int8", wq), g.add_constant(n->name + "_weight_scale", sw),
                  zero, y_scale, zero};
    if (conv) {
      qn->attrs = n->attrs;
      if (ir::Value* b = n->input(2)) {
        // Bias in int32 at the accumulator's scale s_x * s_w[c].
        auto bq = std::make_shared<HostTensor>(DType::kInt32, b->shape);
        const float* bf = b->constant->as<float>();
        for (int64_t c = 0; c < bq->numel(); ++c)
          bq->as<int32_t>()[c] = static_cast<int32_t>(std::nearbyint(bf[c] / (sx * sw->as<float>()[c])));
        qn->inputs.push_back(g.add_constant(n->name + "_bias_int32", bq));
      }
    }
    qn->outputs = {yq};
    yq->producer = qn;
    qn->fused = {n->name};

    ir::Node* dq = g.insert_node_before(n, "DequantizeLinear", n->name + "_dequantize_output");
    ir::Node* bias_add = nullptr;
    if (gemm && n->input(2)) {  // Gemm's C: an FP32 Add after dequantization
      ir::Value* yf = g.add_unique_value(y->name + "_no_bias");
      dq->outputs = {yf};
      yf->producer = dq;
      bias_add = g.insert_node_before(n, "Add", n->name + "_bias");
      bias_add->inputs = {yf, n->input(2)};
      bias_add->outputs = {y};
      y->producer = bias_add;
    } else {
      dq->outputs = {y};
      y->producer = dq;
    }
    dq->inputs = {yq, y_scale, zero};
    n->dead = true;
    for (ir::Node* added : {q, qn, dq, bias_add})
      if (added) KILN_TRY(infer_and_fold_node(*added, g, opset));
  }
  g.erase_dead();
  return Status::ok();
}

}  // namespace kiln
