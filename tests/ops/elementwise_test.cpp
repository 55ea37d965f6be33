#include <cmath>
#include <functional>
#include <map>
#include <memory>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/exec/execution_context.h"
#include "runtime/ops/elementwise_program.h"
#include "runtime/ops/kernel_api.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

HostTensor f32(const Shape& s, const std::vector<float>& v) {
  HostTensor t(DType::kFloat32, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<float>()[i] = v[i];
  return t;
}
HostTensor i64(const Shape& s, const std::vector<int64_t>& v) {
  HostTensor t(DType::kInt64, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<int64_t>()[i] = v[i];
  return t;
}
HostTensor boolean(const Shape& s, const std::vector<int>& v) {
  HostTensor t(DType::kBool, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
  return t;
}

// A shape that broadcasts to `out`: some dims set to 1, some leading dims dropped.
Shape broadcastable(const Shape& out, std::mt19937& rng) {
  std::uniform_int_distribution<int> coin(0, 2);
  Shape s = out;
  for (auto& d : s)
    if (coin(rng) == 0) d = 1;
  size_t drop = std::uniform_int_distribution<size_t>(0, s.size())(rng);
  if (coin(rng) != 0) drop = 0;
  return Shape(s.begin() + static_cast<long>(drop), s.end());
}

struct OpCase {
  std::string op;
  int arity;
  double lo = -3, hi = 3;
  std::function<void(Attributes&)> attrs = nullptr;
  DType dtype = DType::kFloat32;
  int opset = 17;
};

std::vector<OpCase> all_cases() {
  return {
      {"Add", 2}, {"Sub", 2}, {"Mul", 2}, {"Div", 2, 0.5, 3}, {"Pow", 2, 0.1, 2},
      {"Sqrt", 1, 0, 4}, {"Exp", 1}, {"Log", 1, 0.01, 5}, {"Neg", 1}, {"Abs", 1},
      {"Reciprocal", 1, 0.5, 3}, {"Erf", 1}, {"Relu", 1},
      {"LeakyRelu", 1, -3, 3, [](Attributes& a) { a.set("alpha", 0.2f); }},
      {"PRelu", 2}, {"Elu", 1, -3, 3, [](Attributes& a) { a.set("alpha", 0.7f); }},
      {"Selu", 1}, {"Sigmoid", 1}, {"HardSigmoid", 1, -4, 4, [](Attributes& a) { a.set("alpha", 0.3f); }},
      {"HardSwish", 1, -5, 5}, {"Tanh", 1}, {"Softplus", 1, -20, 20},
      {"Clip", 1, -3, 3, [](Attributes& a) { a.set("min", -0.5f); a.set("max", 0.7f); }, DType::kFloat32, 6},
      {"Clip", 3}, {"Min", 3}, {"Max", 2}, {"Sum", 3}, {"Where", 3}, {"Equal", 2}, {"Less", 2},
      {"Greater", 2}, {"LessOrEqual", 2}, {"GreaterOrEqual", 2}, {"Not", 1},
      {"Cast", 1, -300, 300, [](Attributes& a) { a.set("to", int64_t{6}); }},
      {"Cast", 1, -3, 3, [](Attributes& a) { a.set("to", int64_t{9}); }},
      {"Add", 2, -100, 100, nullptr, DType::kInt64}, {"Mul", 2, -100, 100, nullptr, DType::kInt32},
      {"Div", 2, -100, 100, nullptr, DType::kInt64}, {"Max", 2, -100, 100, nullptr, DType::kInt8},
      {"Add", 2, 0, 200, nullptr, DType::kUInt8}, {"Sub", 2, -3, 3, nullptr, DType::kFloat64},
      {"Pow", 2, -4, 4, nullptr, DType::kInt64}, {"Equal", 2, -2, 2, nullptr, DType::kInt64},
      // Beyond the required set.
      {"Floor", 1}, {"Ceil", 1}, {"Round", 1, -4, 4}, {"Sign", 1}, {"Sign", 1, -3, 3, nullptr, DType::kInt32},
      {"Mean", 3}, {"IsNaN", 1}, {"And", 2, 0, 1, nullptr, DType::kBool}, {"Or", 2, 0, 1, nullptr, DType::kBool},
      {"Xor", 2, 0, 1, nullptr, DType::kBool},
  };
}

OpSpec make_spec(const OpCase& c, std::mt19937& rng, int rank) {
  OpSpec s{c.op, c.opset, {}, {}, {}};
  if (c.attrs) c.attrs(s.attrs);
  const Shape out = random_shape(rank, rng, 6);
  for (int i = 0; i < c.arity; ++i) {
    Shape sh = c.op == "PRelu" && i == 0 ? out : broadcastable(out, rng);
    DType dt = c.dtype;
    if ((c.op == "Where" && i == 0) || c.op == "Not") dt = DType::kBool;
    if (c.op == "Clip" && i > 0) sh = {};
    double lo = c.lo, hi = c.hi;
    if (c.op == "Clip" && i == 1) hi = -0.5;
    if (c.op == "Clip" && i == 2) lo = 0.5;
    if (c.op == "Div" && i == 1 && c.dtype == DType::kInt64) lo = 1;  // integer x/0 is undefined
    if (c.op == "Pow" && i == 1 && c.dtype == DType::kInt64) lo = 0, hi = 5;
    s.inputs.push_back(random_tensor(dt, sh, rng, lo, hi));
    s.constant.push_back(false);
  }
  if (c.op == "PRelu") s.inputs[0] = random_tensor(c.dtype, out, rng, c.lo, c.hi);
  // Keep at least one input at the output's shape so the output shape is `out`.
  s.inputs[c.arity - 1 == 0 || c.op == "Clip" ? 0 : c.arity - 1] =
      random_tensor(s.inputs[c.op == "Clip" ? 0 : c.arity - 1].dtype(), out, rng, c.lo, c.hi);
  return s;
}

TEST(ElementwiseOps, OpenclMatchesCpuForEveryOp) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(7);
  // Every op at rank 4 with random broadcasts; scalars for a few (each case compiles a kernel,
  // which PoCL makes slow on a cold cache).
  int k = 0;
  for (const OpCase& c : all_cases()) {
    for (int rank : {4, 0}) {
      if (rank == 0 && k++ % 8 != 0) continue;
      OpSpec s = make_spec(c, rng, rank);
      std::string shapes;
      for (const HostTensor& t : s.inputs) shapes += shape_str(t.shape()) + " ";
      EXPECT_TRUE(opencl_matches_cpu(s, 1e-5, 1e-6)) << c.op << " " << dtype_name(c.dtype) << " inputs " << shapes;
    }
  }
}

TEST(ElementwiseOps, HandComputedValues) {
  std::vector<HostTensor> out;
  // Broadcast add: [2,1] + [3].
  OpSpec add{"Add", 14, {}, {f32({2, 1}, {1, 10}), f32({3}, {1, 2, 3})}, {false, false}};
  ASSERT_TRUE(run_op(add, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], f32({2, 3}, {2, 3, 4, 11, 12, 13}), 0, 0));
  // Integer division truncates toward zero, like C.
  OpSpec div{"Div", 14, {}, {i64({4}, {-7, 7, -7, 9}), i64({4}, {2, 2, -2, 3})}, {false, false}};
  ASSERT_TRUE(run_op(div, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], i64({4}, {-3, 3, 3, 3}), 0, 0));
  // PRelu with a per-channel slope broadcast over [1,2,2].
  OpSpec prelu{"PRelu", 16, {}, {f32({1, 2, 2}, {-1, 2, -3, 4}), f32({2, 1}, {0.5f, 0.25f})}, {false, true}};
  ASSERT_TRUE(run_op(prelu, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], f32({1, 2, 2}, {-0.5f, 2, -0.75f, 4}), 0, 0));
  // Clip-6 bounds are attributes; Clip-13 without max.
  OpSpec clip6{"Clip", 6, {}, {f32({4}, {-2, -0.5f, 0.5f, 2})}, {false}};
  clip6.attrs.set("min", -1.f);
  clip6.attrs.set("max", 1.f);
  ASSERT_TRUE(run_op(clip6, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], f32({4}, {-1, -0.5f, 0.5f, 1}), 0, 0));
  OpSpec clip13{"Clip", 13, {}, {f32({3}, {-2, 0, 2}), f32({}, {-1})}, {false, false}};
  ASSERT_TRUE(run_op(clip13, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], f32({3}, {-1, 0, 2}), 0, 0));
  // HardSigmoid and HardSwish at known points.
  OpSpec hs{"HardSwish", 14, {}, {f32({4}, {-4, -1, 1, 4})}, {false}};
  ASSERT_TRUE(run_op(hs, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], f32({4}, {0, -1.f / 3, 2.f / 3, 4}), 1e-6, 1e-7));
  // Where with a broadcast condition.
  OpSpec where{"Where", 16, {}, {boolean({2, 1}, {1, 0}), f32({2}, {1, 2}), f32({}, {9})}, {false, false, false}};
  ASSERT_TRUE(run_op(where, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], f32({2, 2}, {1, 2, 9, 9}), 0, 0));
  // Cast float -> int32 truncates; -> bool tests != 0.
  OpSpec cast{"Cast", 13, {}, {f32({4}, {-1.7f, 0.2f, 2.9f, 0})}, {false}};
  cast.attrs.set("to", int64_t{7});
  ASSERT_TRUE(run_op(cast, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], i64({4}, {-1, 0, 2, 0}), 0, 0));
  cast.attrs.set("to", int64_t{9});
  ASSERT_TRUE(run_op(cast, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], boolean({4}, {1, 1, 1, 0}), 0, 0));
  // Round halves to even; Mean divides the sum.
  OpSpec round{"Round", 11, {}, {f32({4}, {0.5f, 1.5f, 2.5f, -0.5f})}, {false}};
  ASSERT_TRUE(run_op(round, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], f32({4}, {0, 2, 2, -0.f}), 0, 0));
  OpSpec mean{"Mean", 13, {}, {f32({2}, {1, 2}), f32({1}, {4}), f32({2}, {1, 0})}, {false, false, false}};
  ASSERT_TRUE(run_op(mean, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], f32({2}, {2, 2}), 1e-7, 0));
  // Max propagates NaN (numpy.maximum).
  OpSpec mx{"Max", 13, {}, {f32({2}, {NAN, 1}), f32({2}, {0, NAN})}, {false, false}};
  ASSERT_TRUE(run_op(mx, "cpu", &out).is_ok());
  EXPECT_TRUE(std::isnan(out[0].as<float>()[0]) && std::isnan(out[0].as<float>()[1]));
}

// Builds a graph from (op, inputs, output) triples over named values and runs it.
struct GNode {
  GNode(std::string o, std::vector<std::string> i, std::string r, Attributes a = {})
      : op(std::move(o)), in(std::move(i)), out(std::move(r)), attrs(std::move(a)) {}
  std::string op;
  std::vector<std::string> in;
  std::string out;
  Attributes attrs;
};
Status run_graph(const std::vector<GNode>& nodes, const std::map<std::string, HostTensor>& inputs,
                 const std::map<std::string, HostTensor>& consts, const std::vector<std::string>& outputs,
                 const std::string& device, bool fuse, std::vector<HostTensor>* out, Plan* plan_out) {
  ir::Graph g;
  g.name = "chain";
  g.opsets[""] = 17;
  for (const auto& [name, t] : inputs) named_value(&g, inputs, consts, name);
  for (const auto& [name, t] : consts) named_value(&g, inputs, consts, name);
  for (size_t i = 0; i < nodes.size(); ++i) {
    ir::Node* n = g.add_node(nodes[i].op, nodes[i].op + "_" + std::to_string(i));
    for (const std::string& s : nodes[i].in) n->inputs.push_back(g.find_value(s));
    ir::Value* o = g.find_value(nodes[i].out) ? g.find_value(nodes[i].out) : g.add_value(nodes[i].out);
    o->producer = n;
    n->outputs.push_back(o);
    n->attrs = nodes[i].attrs;
  }
  for (const std::string& s : outputs) g.outputs.push_back(g.find_value(s));
  BuildOptions opts;
  opts.device = device;
  opts.fuse = fuse;
  auto plan = std::make_shared<Plan>();
  KILN_TRY(build_plan_from_graph(g, opts, plan.get()));
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device, &ctx, &notice));
  for (const auto& [name, t] : inputs) KILN_TRY(ctx->bind_input(name, t.dtype(), t.shape(), t.data(), t.size_bytes()));
  out->clear();
  out->reserve(plan->outputs.size());
  for (int32_t t : plan->outputs) {
    const PlanTensor& pt = plan->tensors[t];
    out->emplace_back(pt.dtype, pt.shape);
    KILN_TRY(ctx->bind_output(pt.name, out->back().data(), out->back().size_bytes()));
  }
  KILN_TRY(ctx->run());
  if (plan_out) *plan_out = *plan;
  return Status::ok();
}

TEST(ElementwiseFusion, ChainMatchesUnfused) {
  std::mt19937 rng(11);
  const std::map<std::string, HostTensor> in = {{"x", random_tensor(DType::kFloat32, {2, 3, 4, 5}, rng, -2, 2)}};
  const std::map<std::string, HostTensor> consts = {{"scale", random_tensor(DType::kFloat32, {3, 1, 1}, rng)},
                                                    {"bias", random_tensor(DType::kFloat32, {5}, rng)}};
  // Mul -> Add -> Relu -> Sigmoid, plus x * sigmoid(x) reading x twice (one fused input).
  const std::vector<GNode> nodes = {{"Mul", {"x", "scale"}, "m"},  {"Add", {"m", "bias"}, "a"},
                                    {"Relu", {"a"}, "r"},          {"Sigmoid", {"r"}, "s"},
                                    {"Sigmoid", {"x"}, "sx"},      {"Mul", {"x", "sx"}, "silu"},
                                    {"Add", {"s", "silu"}, "y"}};
  for (const std::string dev : {"cpu", "opencl"}) {
    if (dev == "opencl" && !have_opencl()) continue;
    std::vector<HostTensor> fused, plain;
    Plan fp, pp;
    ASSERT_TRUE(run_graph(nodes, in, consts, {"y"}, dev, true, &fused, &fp).is_ok());
    ASSERT_TRUE(run_graph(nodes, in, consts, {"y"}, dev, false, &plain, &pp).is_ok());
    EXPECT_EQ(pp.nodes.size(), 7u);
    ASSERT_EQ(fp.nodes.size(), 1u) << dev;
    EXPECT_EQ(fp.nodes[0].fused.size(), 7u);
    EXPECT_EQ(fp.nodes[0].fused.front(), "Mul_0");
    EXPECT_EQ(fp.inputs.size(), 1u);
    EXPECT_TRUE(tensors_close(fused[0], plain[0], 0, 0)) << dev;
    if (dev == "opencl") {
      EXPECT_EQ(fp.nodes[0].backend, Backend::kOpenCL);
    }
  }
}

TEST(ElementwiseFusion, KeepsGraphOutputsAndSharedValues) {
  std::mt19937 rng(12);
  const std::map<std::string, HostTensor> in = {{"x", random_tensor(DType::kFloat32, {4, 4}, rng)}};
  // "e" is read twice and "r" is a graph output: neither may disappear into a consumer.
  const std::vector<GNode> nodes = {{"Exp", {"x"}, "e"}, {"Neg", {"e"}, "n"}, {"Abs", {"e"}, "b"},
                                    {"Relu", {"n"}, "r"}, {"Tanh", {"r"}, "t"}};
  std::vector<HostTensor> fused, plain;
  Plan fp;
  ASSERT_TRUE(run_graph(nodes, in, {}, {"r", "t", "b"}, "cpu", true, &fused, &fp).is_ok());
  ASSERT_TRUE(run_graph(nodes, in, {}, {"r", "t", "b"}, "cpu", false, &plain, nullptr).is_ok());
  // Exp stays alone (two readers); Neg+Relu fuse; Tanh stays (reads graph output r); Abs alone.
  EXPECT_EQ(fp.nodes.size(), 4u);
  for (size_t i = 0; i < fused.size(); ++i) EXPECT_TRUE(tensors_close(fused[i], plain[i], 0, 0));
}

TEST(ElementwiseFusion, NarrowDtypesRoundBetweenFusedOps) {
  // float32 -> float16 -> Add -> Mul -> float32: each op rounds to half, fused or not; also
  // int8 wraparound inside a chain.
  std::mt19937 rng(13);
  const std::map<std::string, HostTensor> in = {{"x", random_tensor(DType::kFloat32, {3, 7}, rng, -100, 100)},
                                                {"k", random_tensor(DType::kFloat32, {7}, rng, -3, 3)}};
  Attributes to16, to32, to8;
  to16.set("to", int64_t{10});
  to32.set("to", int64_t{1});
  to8.set("to", int64_t{3});
  const std::vector<GNode> nodes = {
      {"Cast", {"x"}, "h", to16}, {"Cast", {"k"}, "hk", to16}, {"Add", {"h", "hk"}, "s"},
      {"Mul", {"s", "hk"}, "m"},  {"Cast", {"m"}, "y", to32},  {"Cast", {"x"}, "q", to8},
      {"Add", {"q", "q"}, "q2"},  {"Cast", {"q2"}, "z", to32}};
  for (const std::string dev : {"cpu", "opencl"}) {
    if (dev == "opencl" && !have_opencl()) continue;
    std::vector<HostTensor> fused, plain;
    Plan fp;
    ASSERT_TRUE(run_graph(nodes, in, {}, {"y", "z"}, dev, true, &fused, &fp).is_ok());
    ASSERT_TRUE(run_graph(nodes, in, {}, {"y", "z"}, dev, false, &plain, nullptr).is_ok());
    EXPECT_LT(fp.nodes.size(), nodes.size());
    for (size_t i = 0; i < fused.size(); ++i) EXPECT_TRUE(tensors_close(fused[i], plain[i], 0, 0)) << dev << i;
    // Reference: numpy float16 arithmetic.
    const float* x = in.at("x").as<float>();
    const float* k = in.at("k").as<float>();
    for (int i = 0; i < 21; ++i) {
      auto r16 = [](float v) { return ew::half_to_float(ew::float_to_half(v)); };
      const float hk = r16(k[i % 7]);
      EXPECT_EQ(fused[0].as<float>()[i], r16(r16(r16(x[i]) + hk) * hk)) << dev << i;
      const int8_t q = static_cast<int8_t>(static_cast<int64_t>(x[i]));
      EXPECT_EQ(fused[1].as<float>()[i], static_cast<float>(static_cast<int8_t>(q + q))) << dev << i;
    }
  }
}

TEST(ElementwiseFusion, BFloat16RoundsToNearestEven) {
  Attributes to_bf, to32;
  to_bf.set("to", int64_t{16});
  to32.set("to", int64_t{1});
  const std::map<std::string, HostTensor> in = {{"x", f32({4}, {1.00390625f, 1.01171875f, -3.3f, 65504.f})}};
  const std::vector<GNode> nodes = {{"Cast", {"x"}, "b", to_bf}, {"Cast", {"b"}, "y", to32}};
  for (const std::string dev : {"cpu", "opencl"}) {
    if (dev == "opencl" && !have_opencl()) continue;
    std::vector<HostTensor> out;
    ASSERT_TRUE(run_graph(nodes, in, {}, {"y"}, dev, true, &out, nullptr).is_ok());
    EXPECT_TRUE(tensors_close(out[0], f32({4}, {1.f, 1.015625f, -3.296875f, 65536.f}), 0, 0)) << dev;
  }
}

TEST(ElementwiseOps, ClipWithRuntimeBoundsAndIntegerTypes) {
  std::vector<HostTensor> out;
  OpSpec s{"Clip", 13, {}, {i64({4}, {-5, 0, 5, 9}), i64({}, {-2}), i64({}, {6})}, {false, false, false}};
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], i64({4}, {-2, 0, 5, 6}), 0, 0));
  // max only (min left out).
  OpSpec f{"Clip", 13, {}, {f32({3}, {-5, 0, 5}), HostTensor(), f32({}, {1})}, {false, false, false}};
  ASSERT_TRUE(run_op(f, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], f32({3}, {-5, 0, 1}), 0, 0));
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
    EXPECT_TRUE(opencl_matches_cpu(f, 0, 0));
  }
}

TEST(ElementwiseOps, ErrorsNameTheNode) {
  std::mt19937 rng(3);
  std::vector<HostTensor> out;
  OpSpec bad{"Add", 14, {}, {random_tensor(DType::kFloat32, {2, 3}, rng), random_tensor(DType::kFloat32, {4}, rng)},
             {false, false}};
  Status st = run_op(bad, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Add_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("2x3, 4 cannot be broadcast"), std::string::npos) << st.message();

  OpSpec mixed{"Mul", 14, {}, {random_tensor(DType::kFloat32, {2}, rng), random_tensor(DType::kInt64, {2}, rng)},
               {false, false}};
  st = run_op(mixed, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Mul_node"), std::string::npos) << st.message();

  OpSpec prelu{"PRelu", 16, {}, {random_tensor(DType::kFloat32, {2, 3}, rng), random_tensor(DType::kFloat32, {2, 3, 1}, rng)},
               {false, false}};
  st = run_op(prelu, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("unidirectional"), std::string::npos) << st.message();

  OpSpec cast{"Cast", 13, {}, {random_tensor(DType::kFloat32, {2}, rng)}, {false}};
  cast.attrs.set("to", int64_t{8});
  st = run_op(cast, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("string"), std::string::npos) << st.message();

  OpSpec sqrt_int{"Sqrt", 13, {}, {random_tensor(DType::kInt64, {2}, rng)}, {false}};
  st = run_op(sqrt_int, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Sqrt_node"), std::string::npos) << st.message();
}

TEST(ElementwiseOps, OpenclDeclinesFloat64WithoutFp64) {
  std::mt19937 rng(4);
  std::vector<HostTensor> out;
  Plan plan;
  OpSpec s{"Sub", 14, {}, {random_tensor(DType::kFloat64, {3}, rng), random_tensor(DType::kFloat64, {3}, rng)},
           {false, false}};
  ASSERT_TRUE(run_op(s, "cpu", &out, &plan).is_ok());
  ASSERT_EQ(plan.nodes.size(), 1u);
  const ClOp* op = opencl_registry().find(plan.nodes[0].op);
  ASSERT_TRUE(op && op->supports);
  DeviceCaps caps;
  caps.kind = "opencl";
  EXPECT_FALSE(op->supports(plan.nodes[0], plan, caps));
  caps.extensions = {"cl_khr_fp64"};
  EXPECT_TRUE(op->supports(plan.nodes[0], plan, caps));
}

TEST(ElementwiseOps, ConstantInputsFoldAtBuildTime) {
  // Shape arithmetic: int64 Mul/Add/Div on constants becomes a plan constant.
  OpSpec s{"Div", 14, {}, {i64({3}, {10, -9, 8}), i64({1}, {4})}, {true, true}};
  std::vector<HostTensor> out;
  Plan plan;
  ASSERT_TRUE(run_op(s, "cpu", &out, &plan).is_ok());
  EXPECT_TRUE(plan.nodes.empty());
  EXPECT_TRUE(tensors_close(out[0], i64({3}, {2, -2, 2}), 0, 0));
}

TEST(ElementwiseOps, LargeBroadcastBlocksAcrossRows) {
  // Rows shorter than the CPU block and a middle-axis broadcast exercise the strided walk.
  std::mt19937 rng(5);
  OpSpec s{"Sub", 14, {}, {random_tensor(DType::kFloat32, {7, 33, 3}, rng), random_tensor(DType::kFloat32, {7, 1, 3}, rng)},
           {false, false}};
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 33; ++j)
      for (int k = 0; k < 3; ++k)
        ASSERT_EQ(out[0].as<float>()[(i * 33 + j) * 3 + k],
                  s.inputs[0].as<float>()[(i * 33 + j) * 3 + k] - s.inputs[1].as<float>()[i * 3 + k]);
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
  }
}

}  // namespace
}  // namespace kiln::test
