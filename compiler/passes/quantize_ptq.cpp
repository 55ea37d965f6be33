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
// Bias correction (on unless --no-bias-correction): a Conv's bias, and a Gemm's C, absorb the
// mean output shift that rounding the weights causes (compiler/quant/bias_correction.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

#include "compiler/passes/passes.h"
#include "compiler/passes/zero_point.h"
#include "compiler/quant/bias_correction.h"
#include "compiler/quant/calibrate.h"
#include "compiler/quant/calibration_set.h"
#include "compiler/quant/graph_copy.h"
#include "compiler/quant/layer_check.h"
#include "compiler/quant/precision.h"
#include "compiler/quant/smooth_quant.h"
#include "runtime/core/float8.h"
#include "runtime/ops/linear_epilogue.h"

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
  // A node that already carries a fused epilogue (a graph built before) would lose it here.
  if (n.attrs.has(linear::kAttrActivation) || n.attrs.has(linear::kAttrResidual)) return false;
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
  Precision precision = Precision::kFp32;
  bool fp8() const { return dtype != DType::kInt8; }
  const char* name() const { return precision_name(precision); }
};

bool target_of(Precision p, Target* t) {
  switch (p) {
    case Precision::kInt8: *t = {DType::kInt8, 127.f, p}; return true;
    case Precision::kFp8E4M3: *t = {DType::kFloat8E4M3FN, 448.f, p}; return true;
    case Precision::kFp8E5M2: *t = {DType::kFloat8E5M2, 57344.f, p}; return true;
    default: return false;
  }
}

float activation_scale(double amax, const Target& t) { return amax > 0 ? static_cast<float>(amax / t.qmax) : 1.0f; }

// The scale channel of element i of n weights with `channels` scales: Conv weights [M, ...] per
// row, MatMul weights [K, N] per column.
int64_t weight_channel(int64_t i, int64_t n, int64_t channels, bool per_column) {
  return per_column ? i % channels : i / (n / channels);
}

// Symmetric weights with one scale per channel (weight_channel). int8 rounds half to even and
// clamps to [-127, 127]; FP8 uses the spec's saturating round-to-nearest-even cast.
void quantize_weights(const HostTensor& w, bool per_column, const Target& target, std::shared_ptr<HostTensor>* wq,
                      std::shared_ptr<HostTensor>* scales) {
  const int64_t channels = per_column ? w.shape()[1] : w.shape()[0];
  const int64_t n = w.numel();
  const float* src = w.as<float>();
  auto channel_of = [&](int64_t i) { return weight_channel(i, n, channels, per_column); };
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

// The float32 values of quantized weights (`per_column` as quantize_weights).
std::vector<float> dequantized_weights(const HostTensor& wq, const HostTensor& scales, bool per_column,
                                       const Target& target) {
  const int64_t n = wq.numel();
  const int64_t channels = scales.numel();
  const float* s = scales.as<float>();
  const uint8_t* q = wq.data();
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float v = target.fp8() ? float8_to_float(target.dtype, q[i]) : static_cast<float>(static_cast<int8_t>(q[i]));
    out[static_cast<size_t>(i)] = v * s[weight_channel(i, n, channels, per_column)];
  }
  return out;
}

// A bias ([N], [1, N] or one broadcast value; null: zeros) as an [N] vector, plus `shift` when
// given (the bias correction).
std::shared_ptr<HostTensor> bias_vector(const HostTensor* c, int64_t n, const std::vector<double>& shift = {}) {
  auto b = std::make_shared<HostTensor>(DType::kFloat32, Shape{n});
  for (int64_t i = 0; i < n; ++i) {
    const double v = c ? c->as<float>()[c->numel() == 1 ? 0 : i] : 0.0;
    b->as<float>()[i] = static_cast<float>(v + (shift.empty() ? 0.0 : shift[static_cast<size_t>(i)]));
  }
  return b;
}

// Replaces `n` by QuantizeLinear -> quantized kernel -> DequantizeLinear with `ranges`;
// `report` (may be null) gets the SmoothQuant lines.
Status quantize_layer(ir::Graph& g, ir::Node* n, const Target& target, std::map<std::string, TensorRange>& ranges,
                      const BuildOptions& opts, std::FILE* report) {
  const bool smooth = opts.smooth_quant_alpha >= 0;
  // kiln's own nodes are not bound by the opset the model imports (PP-OCR exports at opset 9,
  // before QuantizeLinear existed): they resolve at least opset 13 (per-axis QuantizeLinear),
  // 19 for FP8 Q/DQ.
  const int64_t opset = g.opsets.count("") ? g.opsets.at("") : 13;
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
  // Never-negative activations (ReLU outputs, and a layer's output whose range is its
  // clamp's) use all 255 steps of UINT8 on [0, amax] with zero point 0, instead of 127
  // (half the rounding error). Not a Gemm's output: the kernel's product precedes C.
  const bool y_unsigned = !target.fp8() && ranges[y->name].non_negative && !c_in;
  float sx = activation_scale(ranges[x->name].amax, target);
  const float sy = y_unsigned ? static_cast<float>(y_amax / 255.0) : activation_scale(y_amax, target);
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
    if (report)
      std::fprintf(report, "smooth-quant: %s (input channel spread %.1f)\n", n->name.c_str(),
                   channel_spread(x_channels));
  }
  const bool x_unsigned = !target.fp8() && smooth_s.empty() && ranges[x->name].non_negative;
  if (x_unsigned && ranges[x->name].amax > 0) sx = static_cast<float>(ranges[x->name].amax / 255.0);
  quantize_weights(*w, !conv, target, &wq, &sw);
  // Bias correction: the output mean shift of the rounded weights goes into the bias (a Conv's,
  // a Gemm's C); a MatMul has no bias to take it.
  std::vector<double> shift;
  if (opts.bias_correction && (conv || c_in) && smooth_s.empty())
    output_mean_shift(*n, *w, dequantized_weights(*wq, *sw, !conv, target), ranges[x->name].channel_mean, &shift);
  ir::Value* conv_bias = conv ? n->input(2) : nullptr;
  if (conv && !shift.empty())
    conv_bias = g.add_constant(n->name + "_corrected_bias",
                               bias_vector(conv_bias ? conv_bias->constant.get() : nullptr, w->shape()[0], shift));
  if (c_in && !shift.empty())
    c_in = g.add_constant(n->name + "_corrected_bias", bias_vector(c_in->constant.get(), w->shape()[1], shift));
  const std::string suffix = target.fp8() ? "_fp8" : "_int8";
  ir::Value* zero = add_zero_point(g, n->name + "_zero_point", target.dtype);
  // The unsigned grid's zero point: uint8 0 (the same 256 levels as int8 with zero point -128,
  // but a zero zero point, which the tensor-core kernels need: mma_gemm.h).
  ir::Value* x_zero = x_unsigned ? add_zero_point(g, x->name + "_zero_point", DType::kUInt8) : zero;
  ir::Value* y_zero = y_unsigned && y_amax > 0 ? add_zero_point(g, y->name + "_zero_point", DType::kUInt8) : zero;
  ir::Value* x_scale = g.add_constant(x->name + "_scale", scalar_f32(sx));
  ir::Value* y_scale = g.add_constant(y->name + "_scale", scalar_f32(sy));
  ir::Value* w_q = g.add_constant(n->name + "_weight" + suffix, wq);
  ir::Value* w_scale = g.add_constant(n->name + "_weight_scale", sw);

  ir::Node* q = g.insert_node_before(n, "QuantizeLinear", n->name + "_quantize_input");
  ir::Value* xq = g.add_unique_value(x->name + suffix);
  q->inputs = {x, x_scale, x_zero};
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
    if (ir::Value* b = conv ? conv_bias : c_in)
      qn->inputs.push_back(conv ? b : g.add_constant(n->name + "_bias", bias_vector(b->constant.get(), w->shape()[1])));
    qn->attrs.set("output_dtype", static_cast<int64_t>(target.dtype));
  } else {
    qn = g.insert_node_before(n, conv ? "QLinearConv" : "QLinearMatMul", n->name);
    qn->inputs = {xq, x_scale, x_zero, w_q, w_scale, zero, y_scale, y_zero};
    if (conv) {
      qn->attrs = n->attrs;
      if (ir::Value* b = conv_bias) {
        // Bias in int32 at the accumulator's scale s_x * s_w[c].
        auto bq = std::make_shared<HostTensor>(DType::kInt32, b->shape);
        const float* bf = b->constant->as<float>();
        for (int64_t c = 0; c < bq->numel(); ++c)
          bq->as<int32_t>()[c] = static_cast<int32_t>(std::nearbyint(bf[c] / (sx * sw->as<float>()[c])));
        qn->inputs.push_back(g.add_constant(n->name + "_bias_int32", bq));
      }
    }
  }
  qn->fused = {n->name};
  const int64_t q_opset = std::max<int64_t>(opset, target.fp8() ? 19 : 13);
  ir::Value* yq = g.add_unique_value(y->name + suffix);
  qn->outputs = {yq};
  yq->producer = qn;

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
  dq->inputs = {yq, y_scale, y_zero};
  n->dead = true;
  for (ir::Node* added : {q, qn, dq, bias_add})
    if (added) KILN_TRY(infer_and_fold_node(*added, g, q_opset));
  return Status::ok();
}

// A copy of `g` with the targets in `quantized` (indices) quantized.
Status quantized_copy(const ir::Graph& g, const std::vector<std::pair<ir::Node*, Target>>& targets,
                      const std::set<size_t>& quantized, const std::map<std::string, TensorRange>& ranges,
                      const BuildOptions& opts, ir::Graph* q) {
  std::map<const ir::Node*, size_t> position;
  for (size_t i = 0; i < g.nodes().size(); ++i) position[g.nodes()[i].get()] = i;
  copy_graph(g, q);
  // The copies of the targets, found before quantize_layer inserts nodes and shifts positions.
  std::vector<ir::Node*> nodes;
  for (const auto& t : targets) nodes.push_back(q->nodes()[position.at(t.first)].get());
  std::map<std::string, TensorRange> r = ranges;
  for (size_t i : quantized) KILN_TRY(quantize_layer(*q, nodes[i], targets[i].second, r, opts, nullptr));
  q->erase_dead();
  return Status::ok();
}

// The layer check (compiler/quant/layer_check.h): measures the quantized layers against FP32 on
// the calibration samples; the layers far out of line get the mse ranges of their input and
// output, and those still out of line go into `keep_fp32` (indices into `targets`).
Status check_layers(ir::Graph& g, const std::vector<std::pair<ir::Node*, Target>>& targets,
                    std::map<std::string, TensorRange>& ranges, const std::map<std::string, std::string>& output_view,
                    const BuildOptions& opts, const std::vector<CalibrationSample>& samples, std::set<size_t>* keep_fp32,
                    bool* ranges_changed) {
  std::FILE* report = opts.report;
  // A layer left unquantized runs in float like the rest (--fallback-precision).
  const char* kept_in = fallback_precision_name(opts.fallback_precision);
  std::vector<std::pair<std::string, std::string>> layers;
  // A layer's output is measured where its range was calibrated: after its clamp, if any.
  for (const auto& [n, t] : targets) {
    auto v = output_view.find(n->outputs[0]->name);
    layers.push_back({n->input(0)->name, v == output_view.end() ? n->outputs[0]->name : v->second});
  }
  auto sync_views = [&] {
    for (const auto& [y, view] : output_view) ranges[y] = ranges[view];
  };

  auto measure = [&](std::vector<LayerError>* errors) {
    std::set<size_t> quantized;
    for (size_t i = 0; i < targets.size(); ++i)
      if (!keep_fp32->count(i)) quantized.insert(i);
    ir::Graph q;
    KILN_TRY(quantized_copy(g, targets, quantized, ranges, opts, &q));
    return measure_layer_errors(g, q, layers, samples, errors);
  };
  auto describe = [&](size_t i, const LayerError& e) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "layer check: %s (%s): output error %.3g, input error %.3g on %zu calibration samples",
                  targets[i].first->name.c_str(), targets[i].second.name(), e.output, e.input,
                  samples.size());
    return std::string(buf);
  };
  std::vector<LayerError> errors;
  KILN_TRY(measure(&errors));
  std::vector<size_t> flagged = outlier_layers(errors);
  for (size_t i : flagged) {
    TensorRange& rx = ranges[layers[i].first];
    TensorRange& ry = ranges[layers[i].second];
    auto differs = [](const TensorRange& r) { return r.mse_amax > 0 && std::fabs(r.mse_amax - r.amax) > 0.01 * r.amax; };
    if (differs(rx) || differs(ry)) {
      if (report) std::fprintf(report, "%s; trying the mse ranges of its input and output\n", describe(i, errors[i]).c_str());
      for (TensorRange* r : {&rx, &ry})
        if (r->mse_amax > 0) r->amax = r->mse_amax;
      *ranges_changed = true;
      sync_views();
    } else {
      if (report) std::fprintf(report, "%s; kept in %s\n", describe(i, errors[i]).c_str(), kept_in);
      keep_fp32->insert(i);
    }
  }
  if (!flagged.empty()) {
    KILN_TRY(measure(&errors));
    for (size_t i : outlier_layers(errors)) {
      if (keep_fp32->count(i)) continue;
      if (report) std::fprintf(report, "%s; kept in %s\n", describe(i, errors[i]).c_str(), kept_in);
      keep_fp32->insert(i);
    }
  }
  if (report) {
    size_t worst = 0;
    for (size_t i = 0; i < errors.size(); ++i)
      if (!keep_fp32->count(i) && (keep_fp32->count(worst) || errors[i].own() > errors[worst].own())) worst = i;
    std::fprintf(report, "layer check: %zu of %zu quantized layers within line on %zu calibration samples",
                 targets.size() - keep_fp32->size(), targets.size(), samples.size());
    if (!keep_fp32->count(worst))
      std::fprintf(report, " (largest own error %.3g: %s)", errors[worst].own(), targets[worst].first->name.c_str());
    std::fprintf(report, "\n");
  }
  return Status::ok();
}

}  // namespace

constexpr int kFp8MinGroupChannels = 8;

// The value whose range y's quantization should have: when y's only reader is a clamp (Relu,
// Clip), the clamp's output, as TensorRT calibrates a convolution fused with its activation.
// Quantizing y with that range changes nothing the clamp lets through, while y's own range
// would spend the INT8 levels on values the clamp discards (a ReLU6 input reaches +-100 on
// EfficientNet-Lite0, its output stays in [0, 6]).
const ir::Value* clamped_view(const ir::Graph& g, const ir::Value* y,
                              const std::unordered_map<const ir::Value*, std::vector<ir::Node*>>& readers) {
  auto it = readers.find(y);
  if (g.is_graph_output(y) || it == readers.end() || it->second.size() != 1) return y;
  const ir::Node* a = it->second[0];
  if ((a->op_type != "Relu" && a->op_type != "Clip") || a->outputs.size() != 1 || !a->outputs[0] ||
      a->outputs[0]->dtype != DType::kFloat32)
    return y;
  for (size_t i = 1; i < a->inputs.size(); ++i)
    if (a->inputs[i] && !a->inputs[i]->is_constant()) return y;  // bounds known only at run time
  return a->outputs[0];
}

Status run_quantize_ptq(ir::Graph& g, const PassContext& ctx) {
  const BuildOptions& opts = ctx.options;
  std::vector<std::pair<ir::Node*, Target>> targets;
  CalibrationRequest request;
  std::vector<std::string>& tensors = request.tensors;
  std::set<std::string>& per_channel = request.per_channel;
  std::map<std::string, QuantGrid>& grids = request.grids;
  std::set<std::string> seen;
  std::map<std::string, std::string> output_view;  // y -> the clamp output whose range it takes
  std::vector<std::string> fp8_skipped;
  const auto readers = g.consumers();
  bool any_int8 = false;
  const bool smooth = opts.smooth_quant_alpha >= 0;
  for (const auto& n : g.nodes()) {
    Target t;
    if (n->dead || !target_of(node_precision(*n, opts), &t) || !quantizable(*n)) continue;
    // FP8 convolutions with few input channels per group (depthwise, an RGB stem) run in FP16:
    // E4M3 keeps 3 mantissa bits, and on a handful of taps the rounding of weights and inputs
    // does not average out (EfficientNet-Lite0's logits: relative error 0.55 with them in FP8,
    // 0.42 without the depthwise ones, 0.34 without the stem too); TensorRT has no FP8 kernels
    // for them either. FP16 rather than FP32: tensor cores (ResNet-50's FP32 stem took a fifth
    // of its FP8 plan's time on an H100) at FP32's accuracy for these layers.
    if (t.fp8() && n->op_type == "Conv" && n->input(1)->shape.size() > 1 && n->input(1)->shape[1] < kFp8MinGroupChannels) {
      n->precision = "fp16";
      fp8_skipped.push_back(n->name);
      continue;
    }
    targets.push_back({n.get(), t});
    any_int8 |= !t.fp8();
    if (smooth && !t.fp8() && n->op_type != "Conv") per_channel.insert(n->input(0)->name);
    if (opts.bias_correction && (n->op_type == "Conv" || (n->op_type == "Gemm" && n->input(2))))
      request.channel_means.insert(n->input(0)->name);
    const ir::Value* y_view = clamped_view(g, n->outputs[0], readers);
    if (y_view != n->outputs[0]) output_view[n->outputs[0]->name] = y_view->name;
    for (const ir::Value* v : {static_cast<const ir::Value*>(n->input(0)), y_view}) {
      if (seen.insert(v->name).second) tensors.push_back(v->name);
      // A tensor read by an INT8 and an FP8 layer is scored on the coarser INT8 grid.
      if (t.fp8() && !grids.count(v->name)) grids[v->name] = t.dtype == DType::kFloat8E4M3FN ? QuantGrid::kFp8E4M3 : QuantGrid::kFp8E5M2;
      if (!t.fp8()) grids[v->name] = QuantGrid::kInt8;
    }
  }
  if (!fp8_skipped.empty() && opts.report)
    std::fprintf(opts.report, "fp8: %zu convolutions with fewer than %d input channels per group run in fp16 (%s%s)\n",
                 fp8_skipped.size(), kFp8MinGroupChannels, fp8_skipped[0].c_str(), fp8_skipped.size() > 1 ? ", ..." : "");
  if (targets.empty()) return Status::ok();
  std::map<std::string, TensorRange> ranges;
  BuildOptions calib_opts = opts;
  if (calib_opts.calibrator.empty()) calib_opts.calibrator = any_int8 ? "entropy" : "minmax";
  if (calib_opts.calib_cache.empty() && !calib_opts.calib_cache_dir.empty())
    calib_opts.calib_cache = calib_opts.calib_cache_dir + "/" + calib_opts.calibrator + ".cache";
  bool from_cache = false;
  std::set<std::string> kept_names;  // layers a calibration cache records as kept in fp32
  KILN_TRY(calibrate_ranges(g, request, calib_opts, opts.report, &ranges, &from_cache, &kept_names));
  for (const auto& [y, view] : output_view) ranges[y] = ranges[view];

  // The layer check runs where the build calibrated, on the samples it calibrated on; builds
  // that read their ranges from a cache (a --calib-cache, the other points of a dynamic plan,
  // the later builds of a precision search or sweep) take the check's decisions from it, so
  // that they quantize the same layers alike.
  std::set<size_t> keep_fp32;
  if (from_cache || !opts.has_calibration_data()) {
    for (size_t i = 0; i < targets.size(); ++i)
      if (kept_names.count(targets[i].first->name)) keep_fp32.insert(i);
    if (opts.report)
      std::fprintf(opts.report, "layer check: skipped (ranges from the calibration cache%s)\n",
                   keep_fp32.empty() ? ""
                                     : ("; " + std::to_string(keep_fp32.size()) + " layers kept in " +
                                        fallback_precision_name(opts.fallback_precision) + " as it records").c_str());
  } else if (!opts.accuracy_check) {
    if (opts.report) std::fprintf(opts.report, "layer check: skipped (--no-accuracy-check)\n");
  } else {
    bool changed = false;
    std::vector<CalibrationInput> inputs;
    for (const ir::Value* v : g.inputs) inputs.push_back({v->name, v->dtype, v->shape});
    std::vector<CalibrationSample> samples;
    KILN_TRY(calibration_samples(calib_opts.calib_dir, calib_opts.calib_samples.get(), inputs, &samples));
    if (samples.size() > kLayerCheckSamples) samples.resize(kLayerCheckSamples);
    KILN_TRY(check_layers(g, targets, ranges, output_view, calib_opts, samples, &keep_fp32, &changed));
    std::set<std::string> kept;
    for (size_t i : keep_fp32) kept.insert(targets[i].first->name);
    if ((changed || !kept.empty()) && !calib_opts.calib_cache.empty())
      KILN_TRY(write_calibration_cache(calib_opts.calib_cache, calib_opts.calibrator, ranges, kept));
  }
  if (opts.report && !request.channel_means.empty()) {
    size_t with_means = 0;
    for (const std::string& x : request.channel_means) with_means += !ranges[x].channel_mean.empty();
    if (with_means == request.channel_means.size())
      std::fprintf(opts.report, "bias correction: the layers reading %zu calibrated inputs\n", with_means);
    else
      std::fprintf(opts.report,
                   "bias correction: skipped for layers reading %zu of %zu inputs (the calibration cache has no channel "
                   "means for them; delete it to recalibrate)\n",
                   request.channel_means.size() - with_means, request.channel_means.size());
  }
  for (size_t i = 0; i < targets.size(); ++i)
    if (!keep_fp32.count(i)) KILN_TRY(quantize_layer(g, targets[i].first, targets[i].second, ranges, opts, opts.report));
  g.erase_dead();
  return Status::ok();
}

}  // namespace kiln
