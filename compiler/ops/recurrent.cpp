// RNN, GRU and LSTM: validates operands and attributes against the ONNX spec (every version:
// layout since 14, linear_before_reset since GRU-3, output_sequence of version 1 has no effect
// on what is computed) and canonicalizes the node for the runtime
// (runtime/backends/recurrent_geometry.h): activations become codes with every alpha/beta
// resolved, the direction a number, absent outputs a mask.
#include <algorithm>
#include <cctype>

#include "compiler/ops/op_schema.h"
#include "runtime/backends/recurrent_geometry.h"

namespace kiln {
namespace {

using rnngeo::Cell;

struct ActivationSpec {
  const char* name;
  int64_t code;
  bool uses_alpha, uses_beta;
  float alpha, beta;  // defaults: those of the ONNX op of that name
};

// ONNX names the defaults "the same as of corresponding ONNX operators": LeakyRelu 0.01,
// ThresholdedRelu 1, HardSigmoid 0.2/0.5, Elu 1, Affine 1/0 (the former Affine op). ScaledTanh's
// op had no defaults, so it needs both values given.
const ActivationSpec kActivations[] = {
    {"relu", rnngeo::kRelu, false, false, 0, 0},
    {"tanh", rnngeo::kTanh, false, false, 0, 0},
    {"sigmoid", rnngeo::kSigmoid, false, false, 0, 0},
    {"affine", rnngeo::kAffine, true, true, 1.0f, 0.0f},
    {"leakyrelu", rnngeo::kLeakyRelu, true, false, 0.01f, 0},
    {"thresholdedrelu", rnngeo::kThresholdedRelu, true, false, 1.0f, 0},
    {"scaledtanh", rnngeo::kScaledTanh, true, true, 0, 0},
    {"hardsigmoid", rnngeo::kHardSigmoid, true, true, 0.2f, 0.5f},
    {"elu", rnngeo::kElu, true, false, 1.0f, 0},
    {"softsign", rnngeo::kSoftsign, false, false, 0, 0},
    {"softplus", rnngeo::kSoftplus, false, false, 0, 0},
};

// activations (case-insensitive; one set may serve both directions) with activation_alpha and
// activation_beta consumed in order by the functions that take them, as ONNX Runtime's GRU and
// LSTM do (its RNN indexes them by the function's position instead: the two agree whenever
// every function of a node takes the value, and exporters give none at all).
Status canonical_activations(InferContext& c, Cell cell, int64_t dirs, Attributes* out) {
  static const std::vector<std::string> kDefaults[] = {{"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}};
  const size_t per_dir = static_cast<size_t>(rnngeo::activations_per_direction(cell));
  std::vector<std::string> names = c.attrs().get_strings("activations", kDefaults[static_cast<int>(cell)]);
  if (names.size() == per_dir && dirs == 2) {
    const std::vector<std::string> one = names;
    names.insert(names.end(), one.begin(), one.end());
  }
  if (names.size() != per_dir * static_cast<size_t>(dirs))
    return c.fail("activations has " + std::to_string(names.size()) + " entries; expected " +
                  std::to_string(per_dir * dirs) + " (" + std::to_string(per_dir) + " per direction)");
  const std::vector<float> alphas = c.attrs().get_floats("activation_alpha"), betas = c.attrs().get_floats("activation_beta");
  size_t ai = 0, bi = 0;
  std::vector<int64_t> codes;
  std::vector<float> alpha, beta;
  for (const std::string& name : names) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    const ActivationSpec* spec = nullptr;
    for (const ActivationSpec& s : kActivations)
      if (lower == s.name) spec = &s;
    if (!spec)
      return c.fail_unsupported("activation '" + name + "' is not one of Relu, Tanh, Sigmoid, Affine, LeakyRelu, "
                                "ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus");
    float a = spec->alpha, b = spec->beta;
    const bool has_a = spec->uses_alpha && ai < alphas.size(), has_b = spec->uses_beta && bi < betas.size();
    if (has_a) a = alphas[ai++];
    if (has_b) b = betas[bi++];
    if (spec->code == rnngeo::kScaledTanh && (!has_a || !has_b))
      return c.fail("activation " + name + " needs its alpha and beta in activation_alpha/activation_beta");
    codes.push_back(spec->code);
    alpha.push_back(a);
    beta.push_back(b);
  }
  out->set("activation_codes", codes);
  out->set("activation_alpha", alpha);
  out->set("activation_beta", beta);
  return Status::ok();
}

Status infer_recurrent(InferContext& c, Cell cell) {
  const size_t max_in = cell == Cell::kLstm ? 8 : 6;
  KILN_TRY(c.require_inputs(3, max_in));
  for (size_t i : {0, 1, 2, 3, 5, 6, 7})
    if (i < c.num_inputs() && c.has_input(i)) KILN_TRY(c.require_dtype(i, {DType::kFloat32}));
  if (c.has_input(4)) KILN_TRY(c.require_dtype(4, {DType::kInt32}));
  const Attributes& at = c.attrs();
  const std::string direction = at.get_string("direction", "forward");
  const int64_t mode = direction == "forward" ? 0 : direction == "reverse" ? 1 : direction == "bidirectional" ? 2 : -1;
  if (mode < 0) return c.fail("direction must be forward, reverse or bidirectional, got '" + direction + "'");
  const int64_t layout = c.version() >= 14 ? at.get_int("layout", 0) : 0;
  if (layout != 0 && layout != 1) return c.fail("layout must be 0 or 1, got " + std::to_string(layout));
  const int64_t G = rnngeo::gates(cell), D = mode == 2 ? 2 : 1;
  const Shape& x = c.input_shape(0);
  const Shape& w = c.input_shape(1);
  if (x.size() != 3) return c.fail("X must have rank 3, got " + shape_str(x));
  if (w.size() != 3 || w[0] != D || w[2] != x[2] || w[1] % G)
    return c.fail("W must be [" + std::to_string(D) + ", " + std::to_string(G) + "*hidden_size, " +
                  std::to_string(x[2]) + "], got " + shape_str(w));
  const int64_t H = at.get_int("hidden_size", w[1] / G);
  if (H < 1 || w[1] != G * H)
    return c.fail("hidden_size " + std::to_string(H) + " does not match W " + shape_str(w));
  const int64_t batch = layout ? x[0] : x[1];
  const Shape state = layout ? Shape{batch, D, H} : Shape{D, batch, H};
  auto expect = [&](size_t i, const Shape& s, const char* name) -> Status {
    if (i < c.num_inputs() && c.has_input(i) && c.input_shape(i) != s)
      return c.fail(std::string(name) + " must be " + shape_str(s) + ", got " + shape_str(c.input_shape(i)));
    return Status::ok();
  };
  KILN_TRY(expect(2, {D, G * H, H}, "R"));
  KILN_TRY(expect(3, {D, 2 * G * H}, "B"));
  KILN_TRY(expect(4, {batch}, "sequence_lens"));
  KILN_TRY(expect(5, state, "initial_h"));
  KILN_TRY(expect(6, state, "initial_c"));
  KILN_TRY(expect(7, {D, 3 * H}, "P"));
  if (const HostTensor* lens = c.const_input(4)) {
    const int64_t seq = layout ? x[1] : x[0];
    for (int64_t b = 0; b < lens->numel(); ++b) {
      const int64_t l = lens->as<int32_t>()[b];
      if (l < 0 || l > seq)
        return c.fail("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(l) + " is outside [0, " +
                      std::to_string(seq) + "]");
    }
  }

  Attributes a;
  a.set("hidden_size", H);
  a.set("direction_mode", mode);
  a.set("layout", layout);
  if (at.has("clip")) {
    const float clip = at.get_float("clip", 0);
    if (!(clip > 0)) return c.fail("clip must be positive, got " + std::to_string(clip));
    a.set("clip", clip);
  }
  KILN_TRY(canonical_activations(c, cell, D, &a));
  if (cell == Cell::kGru) a.set("linear_before_reset", int64_t{at.get_int("linear_before_reset", 0) != 0});
  if (cell == Cell::kLstm) a.set("input_forget", int64_t{at.get_int("input_forget", 0) != 0});
  const int64_t seq = layout ? x[1] : x[0];
  const Shape y = layout ? Shape{batch, seq, D, H} : Shape{seq, D, batch, H};
  int64_t mask = 0;
  for (size_t i = 0; i < c.num_outputs(); ++i) {
    if (static_cast<int64_t>(i) >= rnngeo::num_outputs(cell)) return c.fail("has too many outputs");
    if (!c.node().outputs[i]) continue;
    mask |= int64_t{1} << i;
    c.set_output(i, DType::kFloat32, i == 0 ? y : state);
  }
  a.set("output_mask", mask);
  c.mutable_attrs() = a;
  return Status::ok();
}

Status infer_rnn(InferContext& c) { return infer_recurrent(c, Cell::kRnn); }
Status infer_gru(InferContext& c) { return infer_recurrent(c, Cell::kGru); }
Status infer_lstm(InferContext& c) { return infer_recurrent(c, Cell::kLstm); }

}  // namespace

void register_recurrent_schemas(SchemaRegistry& r) {
  r.add({"RNN", {1, 7, 14, 22}, infer_rnn});
  r.add({"GRU", {1, 3, 7, 14, 22}, infer_gru});
  r.add({"LSTM", {1, 7, 14, 22}, infer_lstm});
}

}  // namespace kiln
