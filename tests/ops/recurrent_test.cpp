// RNN, GRU and LSTM: the OpenCL kernel against the CPU reference on random shapes and
// attribute combinations, the CPU reference against values worked out by hand, and the errors
// bad nodes get. (ONNX Runtime is the independent reference in tests/recurrent/.)
#include <cmath>
#include <memory>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "compiler/plan/dynamic_shapes.h"
#include "runtime/exec/execution_context.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

struct Config {
  std::string op;
  std::string direction = "forward";
  int64_t layout = 0;
  bool bias = true, lens = false, h0 = false, c0 = false, peep = false, clip = false, lbr = false;
  bool input_forget = false;
  std::vector<std::string> activations;
  std::vector<float> alpha, beta;
};

int64_t gates(const std::string& op) { return op == "LSTM" ? 4 : op == "GRU" ? 3 : 1; }

OpSpec make_spec(const Config& c, int64_t seq, int64_t batch, int64_t input, int64_t hidden, std::mt19937& rng,
                 bool weights_constant) {
  const int64_t D = c.direction == "bidirectional" ? 2 : 1, G = gates(c.op);
  OpSpec s;
  s.op_type = c.op;
  s.opset = 14;
  s.attrs.set("hidden_size", hidden);
  s.attrs.set("direction", c.direction);
  s.attrs.set("layout", c.layout);
  if (c.clip) s.attrs.set("clip", 0.7f);
  if (c.lbr) s.attrs.set("linear_before_reset", int64_t{1});
  if (c.input_forget) s.attrs.set("input_forget", int64_t{1});
  if (!c.activations.empty()) s.attrs.set("activations", c.activations);
  if (!c.alpha.empty()) s.attrs.set("activation_alpha", c.alpha);
  if (!c.beta.empty()) s.attrs.set("activation_beta", c.beta);
  const Shape x = c.layout ? Shape{batch, seq, input} : Shape{seq, batch, input};
  const Shape state = c.layout ? Shape{batch, D, hidden} : Shape{D, batch, hidden};
  s.inputs.push_back(random_tensor(DType::kFloat32, x, rng));
  s.inputs.push_back(random_tensor(DType::kFloat32, {D, G * hidden, input}, rng, -0.6, 0.6));
  s.inputs.push_back(random_tensor(DType::kFloat32, {D, G * hidden, hidden}, rng, -0.6, 0.6));
  s.inputs.push_back(c.bias ? random_tensor(DType::kFloat32, {D, 2 * G * hidden}, rng, -0.3, 0.3) : HostTensor());
  HostTensor lens;
  if (c.lens) {
    lens = HostTensor(DType::kInt32, {batch});
    std::uniform_int_distribution<int32_t> len(0, static_cast<int32_t>(seq));
    for (int64_t b = 0; b < batch; ++b) lens.as<int32_t>()[b] = b == 0 ? static_cast<int32_t>(seq) : len(rng);
  }
  s.inputs.push_back(lens);
  s.inputs.push_back(c.h0 ? random_tensor(DType::kFloat32, state, rng) : HostTensor());
  if (c.op == "LSTM") {
    s.inputs.push_back(c.c0 ? random_tensor(DType::kFloat32, state, rng) : HostTensor());
    s.inputs.push_back(c.peep ? random_tensor(DType::kFloat32, {D, 3 * hidden}, rng) : HostTensor());
  }
  s.constant.assign(s.inputs.size(), false);
  for (size_t i = 1; i < s.inputs.size(); ++i) s.constant[i] = weights_constant && i != 4;
  s.num_outputs = c.op == "LSTM" ? 3 : 2;
  return s;
}

TEST(RecurrentOps, OpenCLMatchesCpuOnRandomConfigs) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(11);
  const std::vector<Config> configs = {
      {"RNN"},
      {"RNN", "reverse", 1, true, true, true},
      {"RNN", "bidirectional", 0, false, false, true, false, false, true, false, false, {"Relu", "LeakyRelu"}, {0.1f}},
      {"GRU"},
      {"GRU", "bidirectional", 1, true, true, true, false, false, false, true},
      {"GRU", "reverse", 0, true, false, false, false, false, true, false, false, {"HardSigmoid", "Softsign"}, {0.3f},
       {0.4f}},
      {"LSTM"},
      {"LSTM", "bidirectional", 0, true, true, true, true, true},
      {"LSTM", "reverse", 1, true, true, false, true, true, true, false, true},
      {"LSTM", "forward", 0, false, false, true, false, false, false, false, false,
       {"Sigmoid", "Elu", "ScaledTanh"}, {0.9f, 1.1f}, {0.8f}},
  };
  for (size_t i = 0; i < configs.size(); ++i) {
    std::uniform_int_distribution<int64_t> dim(1, 5);
    const int64_t seq = dim(rng), batch = dim(rng), input = dim(rng) + 1, hidden = dim(rng) + 2;
    const OpSpec s = make_spec(configs[i], seq, batch, input, hidden, rng, i % 2 == 0);
    EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-5)) << "config " << i << " (" << configs[i].op << ", "
                                                   << configs[i].direction << ", layout " << configs[i].layout << ")";
  }
}

// A hidden size past one work-group's worth of work-items: each work-item owns several units.
TEST(RecurrentOps, OpenCLMatchesCpuWithManyHiddenUnits) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(12);
  Config c{"LSTM", "bidirectional"};
  c.h0 = c.c0 = true;
  EXPECT_TRUE(opencl_matches_cpu(make_spec(c, 2, 1, 5, 300, rng, true), 1e-4, 1e-5));
}

// h_t = Relu(w x_t + r h_{t-1} + wb + rb) for one unit, worked out step by step; reverse
// direction with a shorter sequence: steps run len-1..0 and Y is zero past len.
TEST(RecurrentOps, RnnMatchesHandComputedValues) {
  OpSpec s;
  s.op_type = "RNN";
  s.opset = 14;
  s.attrs.set("hidden_size", int64_t{1});
  s.attrs.set("direction", std::string("reverse"));
  s.attrs.set("activations", std::vector<std::string>{"Relu"});
  auto t = [](Shape sh, std::vector<float> v) {
    HostTensor h(DType::kFloat32, sh);
    for (size_t i = 0; i < v.size(); ++i) h.as<float>()[i] = v[i];
    return h;
  };
  HostTensor lens(DType::kInt32, {1});
  lens.as<int32_t>()[0] = 2;
  s.inputs = {t({3, 1, 1}, {1.0f, 2.0f, 5.0f}), t({1, 1, 1}, {0.5f}), t({1, 1, 1}, {2.0f}), t({1, 2}, {0.25f, 0.25f}),
              lens, t({1, 1, 1}, {1.0f})};
  s.constant = {false, true, true, true, false, false};
  s.num_outputs = 2;
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  // t=1: relu(0.5*2 + 2*1 + 0.5) = 3.5; t=0: relu(0.5*1 + 2*3.5 + 0.5) = 8; t=2 is past len.
  EXPECT_TRUE(tensors_close(out[0], t({3, 1, 1, 1}, {8.0f, 3.5f, 0.0f}), 0, 1e-6));
  EXPECT_TRUE(tensors_close(out[1], t({1, 1, 1}, {8.0f}), 0, 1e-6));
}

// One LSTM step with one unit, every gate worked out: i, o, f = sigmoid, c~ = tanh, peepholes.
TEST(RecurrentOps, LstmStepMatchesHandComputedValues) {
  OpSpec s;
  s.op_type = "LSTM";
  s.opset = 7;
  s.attrs.set("hidden_size", int64_t{1});
  auto t = [](Shape sh, std::vector<float> v) {
    HostTensor h(DType::kFloat32, sh);
    for (size_t i = 0; i < v.size(); ++i) h.as<float>()[i] = v[i];
    return h;
  };
  const float x = 0.5f, h0 = -0.2f, c0 = 0.3f;
  const float w[4] = {0.1f, 0.2f, 0.3f, 0.4f}, r[4] = {-0.5f, 0.6f, -0.7f, 0.8f}, p[3] = {0.9f, -1.0f, 1.1f};
  s.inputs = {t({1, 1, 1}, {x}), t({1, 4, 1}, {w[0], w[1], w[2], w[3]}), t({1, 4, 1}, {r[0], r[1], r[2], r[3]}),
              HostTensor(), HostTensor(), t({1, 1, 1}, {h0}), t({1, 1, 1}, {c0}), t({1, 3}, {p[0], p[1], p[2]})};
  s.constant = {false, true, true, false, false, false, false, true};
  s.num_outputs = 3;
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  auto sig = [](float v) { return 1.0f / (1.0f + std::exp(-v)); };
  const float i = sig(w[0] * x + r[0] * h0 + p[0] * c0);
  const float f = sig(w[2] * x + r[2] * h0 + p[2] * c0);
  const float cc = std::tanh(w[3] * x + r[3] * h0);
  const float c = f * c0 + i * cc;
  const float o = sig(w[1] * x + r[1] * h0 + p[1] * c);
  const float h = o * std::tanh(c);
  EXPECT_TRUE(tensors_close(out[0], t({1, 1, 1, 1}, {h}), 1e-6, 1e-7));
  EXPECT_TRUE(tensors_close(out[1], t({1, 1, 1}, {h}), 1e-6, 1e-7));
  EXPECT_TRUE(tensors_close(out[2], t({1, 1, 1}, {c}), 1e-6, 1e-7));
}

// sequence_lens fed at run time past the sequence: an error on either backend, never a read past X.
TEST(RecurrentOps, OutOfRangeSequenceLengthIsAnError) {
  std::mt19937 rng(14);
  Config c{"LSTM", "bidirectional"};
  c.lens = true;
  OpSpec s = make_spec(c, 3, 2, 3, 4, rng, true);
  s.inputs[4].as<int32_t>()[1] = 4;
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !have_opencl()) continue;
    std::vector<HostTensor> out;
    Status st = run_op(s, device, &out);
    ASSERT_FALSE(st.is_ok()) << device;
    EXPECT_NE(st.message().find("sequence_lens[1] = 4 is outside [0, 3]"), std::string::npos) << device << ": "
                                                                                              << st.message();
    // The error comes from the backend that ran the node.
    if (std::string(device) == "opencl") EXPECT_NE(st.message().find("LSTM, opencl"), std::string::npos) << st.message();
  }
}

// The execution context records its OpenCL launches (the flat launch list) before an
// inference's inputs reach the device, again after every reshape, so a node whose launches
// depend on sequence_lens must read them when it runs, not while it is recorded. Here a plan
// with a dynamic sequence length runs at 5 steps with lengths 5, then at 3 steps with lengths
// 3: recording it again must not see the 5s still on the device.
TEST(RecurrentOps, SequenceLengthsAreReadWhenTheNodeRuns) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(15);
  Config c{"LSTM", "bidirectional"};
  c.lens = true;
  const OpSpec s5 = make_spec(c, 5, 2, 3, 4, rng, true);
  auto make_graph = [&](ir::Graph* g) {
    g->name = "lstm_dynamic_seq";
    g->opsets[""] = s5.opset;
    ir::Node* n = g->add_node("LSTM", "lstm");
    for (size_t i = 0; i < s5.inputs.size(); ++i) {
      if (s5.inputs[i].dtype() == DType::kUndefined) {
        n->inputs.push_back(nullptr);
        continue;
      }
      ir::Value* v = g->add_value("in" + std::to_string(i));
      v->dtype = s5.inputs[i].dtype();
      v->shape = s5.inputs[i].shape();
      if (i == 0) v->shape[0] = -1;  // the sequence length: a dim --min/--max-shapes ranges
      v->has_shape = true;
      if (s5.constant[i]) {
        v->constant = std::make_shared<HostTensor>(s5.inputs[i]);
      } else {
        v->is_graph_input = true;
        g->inputs.push_back(v);
      }
      n->inputs.push_back(v);
    }
    n->attrs = s5.attrs;
    for (int i = 0; i < s5.num_outputs; ++i) {
      ir::Value* v = g->add_value("out" + std::to_string(i));
      v->producer = n;
      n->outputs.push_back(v);
      g->outputs.push_back(v);
    }
    return Status::ok();
  };
  BuildOptions opts;
  opts.device = "opencl";
  opts.shapes["in0"] = {5, 2, 3};
  opts.min_shapes["in0"] = {1, 2, 3};
  opts.max_shapes["in0"] = {5, 2, 3};
  auto plan = std::make_shared<Plan>();
  Status st = build_dynamic_plan(make_graph, opts, plan.get());
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(plan->nodes.size(), 1u);
  ASSERT_EQ(plan->nodes[0].backend, Backend::kOpenCL);
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(plan, "opencl", &ctx, &notice).is_ok());
  for (int64_t seq : {5, 3, 5, 2}) {
    OpSpec at = s5;
    at.inputs[0] = random_tensor(DType::kFloat32, {seq, 2, 3}, rng);
    at.inputs[4].as<int32_t>()[0] = at.inputs[4].as<int32_t>()[1] = static_cast<int32_t>(seq);
    st = ctx->set_input_shape("in0", at.inputs[0].shape());
    ASSERT_TRUE(st.is_ok()) << st.message();
    for (int32_t t : plan->inputs) {
      const PlanTensor& pt = plan->tensors[t];
      const HostTensor& src = at.inputs[std::stoi(pt.name.substr(2))];
      st = ctx->bind_input(pt.name, src.dtype(), src.shape(), src.data(), src.size_bytes());
      ASSERT_TRUE(st.is_ok()) << st.message();
    }
    std::vector<HostTensor> got, want;
    for (int32_t t : plan->outputs) got.emplace_back(plan->tensors[t].dtype, ctx->tensor_shape(t));
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_TRUE(ctx->bind_output(plan->tensors[plan->outputs[i]].name, got[i].data(), got[i].size_bytes()).is_ok());
    st = ctx->run();
    ASSERT_TRUE(st.is_ok()) << seq << " steps: " << st.message();
    ASSERT_TRUE(run_op(at, "cpu", &want).is_ok());
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_TRUE(tensors_close(got[i], want[i], 1e-4, 1e-5)) << seq << " steps, output " << i;
  }
}

TEST(RecurrentOps, BadNodesAreClearErrors) {
  std::mt19937 rng(13);
  struct Case {
    const char* what;
    void (*damage)(OpSpec&);
    const char* expect;
  };
  const Case cases[] = {
      {"unknown activation", [](OpSpec& s) { s.attrs.set("activations", std::vector<std::string>{"Swish", "Tanh"}); },
       "activation 'Swish' is not one of"},
      {"activation count", [](OpSpec& s) { s.attrs.set("activations", std::vector<std::string>{"Tanh"}); },
       "activations has 1 entries; expected 2"},
      {"direction", [](OpSpec& s) { s.attrs.set("direction", std::string("sideways")); }, "direction must be"},
      {"layout", [](OpSpec& s) { s.attrs.set("layout", int64_t{2}); }, "layout must be 0 or 1"},
      {"hidden size", [](OpSpec& s) { s.attrs.set("hidden_size", int64_t{5}); }, "hidden_size 5 does not match W"},
      {"R shape", [](OpSpec& s) { s.inputs[2] = HostTensor(DType::kFloat32, {1, 12, 3}); }, "R must be 1x12x4"},
      {"clip", [](OpSpec& s) { s.attrs.set("clip", -1.0f); }, "clip must be positive"},
      {"ScaledTanh without values",
       [](OpSpec& s) { s.attrs.set("activations", std::vector<std::string>{"Sigmoid", "ScaledTanh"}); },
       "needs its alpha and beta"},
  };
  for (const Case& c : cases) {
    OpSpec s = make_spec(Config{"GRU"}, 2, 2, 3, 4, rng, true);
    c.damage(s);
    std::vector<HostTensor> out;
    Status st = run_op(s, "cpu", &out);
    ASSERT_FALSE(st.is_ok()) << c.what;
    EXPECT_NE(st.message().find("GRU_node"), std::string::npos) << c.what << ": " << st.message();
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << c.what << ": " << st.message();
  }
}

}  // namespace
}  // namespace kiln::test
