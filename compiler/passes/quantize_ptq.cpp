// Post-training quantization (--precision int8 / fp8 / fp8-e5m2, or per layer with
// --layer-precision). Runs after BatchNormalization folding so the calibrated ranges and the
// quantized weights are those of the folded convolutions.
//
// Every Conv, MatMul and linear-layer Gemm with constant float32 weights assigned one of those
// precisions becomes
//   QuantizeLinear(x, s_x) -> quantized kernel -> DequantizeLinear(y, s_y)
// with symmetric ranges: activations per tensor (scale = calibrated amax / qmax), weights per
// output channel (Conv) or column (MatMul) (scale = max|w| / qmax), qmax = 127 (int8), 448
// (FP8 E4M3FN) or 57344 (FP8 E5M2). The weights are stored quantized in the plan.
//   int8: QLinearConv / QLinearMatMul of the quantize family (int32 accumulation and bias,
//         requantization to s_y); a Gemm's C is an FP32 Add after the dequantization.
//   fp8:  Fp8Conv / Fp8MatMul (compiler/ops/quantize_fp8.cpp): FP8 decoded in the kernel,
//         float32 accumulation, the float32 bias (also a Gemm's C) added in the kernel, the
//         output cast to FP8 with the spec's saturating round-to-nearest-even.
// --smooth-quant: INT8 MatMul/Gemm layers whose input channels spread widely quantize their
// input per channel instead (compiler/quant/smooth_quant.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

#include "compiler/passes/passes.h"
#include "compiler/quant/calibrate.h"
#include "compiler/quant/precision.h"
#include "compiler/quant/smooth_quant.h"
#include "runtime/core/float8.h"

namespace kiln {
namespace {

// Gemm qualifies in the form a linear layer has: Y = A * B(^T) + C with alpha = beta = 1, no
// transposed A, and a 1-D (or [1, N]) constant C (INT8: an FP32 Add after the dequantization;
// FP8: the kernel's bias).
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

// The quantized element type of a precision and its symmetric range [-qmax, qmax].
struct Target {
  DType dtype = DType::kUndefined;
  float qmax = 0;
  bool fp8() const { return dtype != DType::kInt8; }
};

bool target_of(Precision p, Target* t) {
  switch (p) {
    case Precision::kInt8: *t = {DType::kInt8, 127.f}; return true;
    case Precision::kFp8E4M3: *t = {DType::kFloat8E4M3FN, 448.f}; return true;
    case Precision::kFp8E5M2: *t = {DType::kFloat8E5M2, 57344.f}; return true;
    default: return false;
  }
}

// A zero point: 0 in the target type (for FP8 it only carries the dtype; the spec requires 0).
std::shared_ptr<HostTensor> zero_of(DType t) {
  auto z = std::make_shared<HostTensor>(t, Shape{});
  std::fill(z->bytes().begin(), z->bytes().end(), uint8_t{0});
  return z;
}

float activation_scale(double amax, const Target& t) { return amax > 0 ? static_cast<float>(amax / t.qmax) : 1.0f; }

// Symmetric weights with one scale per `channels` slice: Conv weights [M, ...] per row,
// MatMul weights [K, N] per column. int8 rounds half to even and clamps to [-127, 127]; FP8
// uses the spec's saturating round-to-nearest-even cast.
void quantize_weights(const HostTensor& w, bool per_column, const Target& target, std::shared_ptr<HostTensor>* wq,
                      std::shared_ptr<HostTensor>* scales) {
  const int64_t channels = per_column ? w.shape()[1] : w.shape()[0];
  const int64_t n = w.numel();
  const float* src = w.as<float>();
  auto channel_of = [&](int64_t i) { return per_column ? i % channels : i / (n / channels); };
  *scales = std::make_shared<HostTensor>(DType::kFloat32, Shape{channels});
  float* s = (*scales)->as<float>();
  for (int64_t c = 0; c < channels; ++c) s[c] = 0;
  for (int64_t i = 0; i < n; ++i) s[channel_of(i)] = std::max(s[channel_of(i)], std::fabs(src[i]));
  for (int64_t c = 0; c < channels; ++c) s[c] = s[c] > 0 ? s[c] / target.qmax : 1.f;
  *wq = std::make_shared<HostTensor>(target.dtype, w.shape());
  uint8_t* q = (*wq)->data();
  for (int64_t i = 0; i < n; ++i) {
    const float v = src[i] / s[channel_of(i)];
    q[i] = target.fp8() ? float_to_float8(target.dtype, v, true)
                        : static_cast<uint8_t>(static_cast<int8_t>(std::min(127.f, std::max(-127.f, std::nearbyint(v)))));
  }
}

// A Gemm's C ([N], [1, N] or one broadcast value) as the [N] bias of an FP8 kernel.
std::shared_ptr<HostTensor> bias_vector(const HostTensor& c, int64_t n) {
  auto b = std::make_shared<HostTensor>(DType::kFloat32, Shape{n});
  for (int64_t i = 0; i < n; ++i) b->as<float>()[i] = c.as<float>()[c.numel() == 1 ? 0 : i];
  return b;
}

}  // namespace

Status run_quantize_ptq(ir::Graph& g, const PassContext& ctx) {
  const BuildOptions& opts = ctx.options;
  std::vector<std::pair<ir::Node*, Target>> targets;
  std::vector<std::string> tensors;
  std::set<std::string> seen, per_channel;
  bool any_int8 = false;
  const bool smooth = opts.smooth_quant_alpha >= 0;
  for (const auto& n : g.nodes()) {
    Target t;
    if (n->dead || !target_of(node_precision(*n, opts), &t) || !quantizable(*n)) continue;
    targets.push_back({n.get(), t});
    any_int8 |= !t.fp8();
    if (smooth && !t.fp8() && n->op_type != "Conv") per_channel.insert(n->input(0)->name);
    for (const ir::Value* v : {n->input(0), n->outputs[0]})
      if (seen.insert(v->name).second) tensors.push_back(v->name);
  }
  if (targets.empty()) return Status::ok();
  std::map<std::string, TensorRange> ranges;
  BuildOptions calib_opts = opts;
  if (calib_opts.calibrator.empty()) calib_opts.calibrator = any_int8 ? "entropy" : "minmax";
  if (calib_opts.calib_cache.empty() && !calib_opts.calib_cache_dir.empty())
    calib_opts.calib_cache = calib_opts.calib_cache_dir + "/" + calib_opts.calibrator + ".cache";
  KILN_TRY(calibrate_ranges(g, tensors, calib_opts, opts.report, &ranges, per_channel));

  const int64_t opset = g.opsets.at("");
  for (const auto& [n, target] : targets) {
    ir::Value* x = n->input(0);
    ir::Value* y = n->outputs[0];
    const bool conv = n->op_type == "Conv";
    const bool gemm = n->op_type == "Gemm";
    ir::Value* c_in = gemm ? n->input(2) : nullptr;
    double y_amax = ranges[y->name].amax;
    if (c_in && !target.fp8()) {
      // The integer kernel produces A*B before C is added: widen the calibrated range of
      // A*B + C by max|C| so the bias-free product is not clipped.
      const HostTensor& c = *c_in->constant;
      double cmax = 0;
      for (int64_t i = 0; i < c.numel(); ++i) cmax = std::max(cmax, std::fabs(static_cast<double>(c.as<float>()[i])));
      y_amax += cmax;
    }
    float sx = activation_scale(ranges[x->name].amax, target);
    const float sy = activation_scale(y_amax, target);
    std::shared_ptr<HostTensor> wq, sw;
    std::shared_ptr<const HostTensor> w = n->input(1)->constant;
    if (gemm && n->attrs.get_int("transB", 0)) {  // [N, K] -> [K, N] for the matmul kernels
      auto t = std::make_shared<HostTensor>(DType::kFloat32, Shape{w->shape()[1], w->shape()[0]});
      const int64_t rows = w->shape()[0], cols = w->shape()[1];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) t->as<float>()[c * rows + r] = w->as<float>()[r * cols + c];
      w = t;
    }
    // SmoothQuant: s_x becomes the range of X / s, the weights s W (see smooth_quant.h).
    std::vector<float> smooth_s;
    const std::vector<double>& x_channels = ranges[x->name].channel_amax;
    if (smooth && !target.fp8() && !conv && static_cast<int64_t>(x_channels.size()) == w->shape()[0] &&
        channel_spread(x_channels) > kSmoothMinSpread) {
      smooth_s = smooth_factors(x_channels, *w, opts.smooth_quant_alpha);
      w = scale_weight_rows(*w, smooth_s);
      sx = activation_scale(smoothed_amax(x_channels, smooth_s), target);
      if (opts.report)
        std::fprintf(opts.report, "smooth-quant: %s (input channel spread %.1f)\n", n->name.c_str(),
                     channel_spread(x_channels));
    }
    quantize_weights(*w, !conv, target, &wq, &sw);
    const std::string suffix = target.fp8() ? "_fp8" : "_int8";
    ir::Value* zero = g.add_constant(n->name + "_zero_point", zero_of(target.dtype));
    ir::Value* x_scale = g.add_constant(x->name + "_scale", scalar_f32(sx));
    ir::Value* y_scale = g.add_constant(y->name + "_scale", scalar_f32(sy));
    ir::Value* w_q = g.add_constant(n->name + "_weight" + suffix, wq);
    ir::Value* w_scale = g.add_constant(n->name + "_weight_scale", sw);

    ir::Node* q = g.insert_node_before(n, "QuantizeLinear", n->name + "_quantize_input");
    ir::Value* xq = g.add_unique_value(x->name + suffix);
    q->inputs = {x, x_scale, zero};
    if (!smooth_s.empty()) {  // per channel of the last axis: scale s_x * s_k, zero points 0
      const int64_t k_dim = static_cast<int64_t>(smooth_s.size());
      auto qs = std::make_shared<HostTensor>(DType::kFloat32, Shape{k_dim});
      for (int64_t k = 0; k < k_dim; ++k) qs->as<float>()[k] = sx * smooth_s[static_cast<size_t>(k)];
      auto qz = std::make_shared<HostTensor>(DType::kInt8, Shape{k_dim});
      std::fill(qz->bytes().begin(), qz->bytes().end(), uint8_t{0});
      q->inputs = {x, g.add_constant(n->name + "_smoothed_input_scale", qs),
                   g.add_constant(n->name + "_smoothed_input_zero_point", qz)};
      q->attrs.set("axis", static_cast<int64_t>(-1));
    }
    q->outputs = {xq};
    xq->producer = q;

    ir::Node* qn;
    if (target.fp8()) {
      qn = g.insert_node_before(n, conv ? "Fp8Conv" : "Fp8MatMul", n->name);
      qn->inputs = {xq, x_scale, w_q, w_scale, y_scale};
      if (conv) qn->attrs = n->attrs;
      if (ir::Value* b = conv ? n->input(2) : c_in)
        qn->inputs.push_back(conv ? b : g.add_constant(n->name + "_bias", bias_vector(*b->constant, w->shape()[1])));
      qn->attrs.set("output_dtype", static_cast<int64_t>(target.dtype));
    } else {
      qn = g.insert_node_before(n, conv ? "QLinearConv" : "QLinearMatMul", n->name);
      qn->inputs = {xq, x_scale, zero, w_q, w_scale, zero, y_scale, zero};
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
    }
    ir::Value* yq = g.add_unique_value(y->name + suffix);
    qn->outputs = {yq};
    yq->producer = qn;
    qn->fused = {n->name};

    ir::Node* dq = g.insert_node_before(n, "DequantizeLinear", n->name + "_dequantize_output");
    ir::Node* bias_add = nullptr;
    if (c_in && !target.fp8()) {  // Gemm's C: an FP32 Add after dequantization
      ir::Value* yf = g.add_unique_value(y->name + "_no_bias");
      dq->outputs = {yf};
      yf->producer = dq;
      bias_add = g.insert_node_before(n, "Add", n->name + "_bias");
      bias_add->inputs = {yf, c_in};
      bias_add->outputs = {y};
      y->producer = bias_add;
    } else {
      dq->outputs = {y};
      y->producer = dq;
    }
    dq->inputs = {yq, y_scale, zero};
    n->dead = true;
    // FP8 Q/DQ exist from opset 19 on (the same ops as 13 for the other types): the added
    // nodes resolve at least that version whatever the model imports.
    // Per-axis QuantizeLinear needs opset 13.
    const int64_t q_opset = target.fp8() ? std::max<int64_t>(opset, 19) : smooth_s.empty() ? opset : std::max<int64_t>(opset, 13);
    for (ir::Node* added : {q, qn, dq, bias_add})
      if (added) KILN_TRY(infer_and_fold_node(*added, g, q_opset));
  }
  g.erase_dead();
  return Status::ok();
}

}  // namespace kiln
