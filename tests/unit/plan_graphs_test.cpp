// Plans with control flow: subgraphs survive the round trip, every kind of damage to them is
// refused with a message saying what is wrong, damaged files never crash the loader or the
// executor, and the compiled control_flow.onnx computes what the ONNX semantics say on each
// path (branches picked at run time, a Loop with a run-time trip count, a Scan).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "compiler/compiler.h"
#include "runtime/exec/execution_context.h"
#include "runtime/plan/plan_format.h"
#include "tests/unit/unit_util.h"

namespace kiln::test {
namespace {

PlanTensor tensor(const std::string& name, DType dt, Shape s, TensorKind k) {
  PlanTensor t;
  t.name = name;
  t.dtype = dt;
  t.shape = std::move(s);
  t.kind = k;
  return t;
}

PlanNode node(const std::string& name, const std::string& op, std::vector<int32_t> in, std::vector<int32_t> out,
              std::vector<int32_t> subgraphs = {}) {
  PlanNode n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.kernel = "cpu:" + op;
  n.subgraphs = std::move(subgraphs);
  return n;
}

// y = If(cond) { If(flag) { x } else { c } } else { x }, with x and flag captured from the main
// graph through both levels and c a constant of the innermost branch.
Plan nested_if_plan() {
  Plan p;
  p.writer_version = "kiln test";
  p.target.kind = "cpu";
  p.tensors = {tensor("cond", DType::kBool, {}, TensorKind::kInput), tensor("flag", DType::kBool, {}, TensorKind::kInput),
               tensor("x", DType::kFloat32, {2}, TensorKind::kInput),
               tensor("y", DType::kFloat32, {2}, TensorKind::kActivation)};
  p.inputs = {0, 1, 2};
  p.outputs = {3};
  p.nodes = {node("outer", "If", {0, 2, 1}, {3}, {0, 3})};
  p.weights.assign(8, 0);
  const float c[2] = {7.0f, -7.0f};
  std::memcpy(p.weights.data(), c, 8);
  PlanGraph then_g;  // #0: If(flag) over #1 and #2
  then_g.tensors = {tensor("x", DType::kFloat32, {2}, TensorKind::kInput),
                    tensor("flag", DType::kBool, {}, TensorKind::kInput),
                    tensor("t", DType::kFloat32, {2}, TensorKind::kActivation)};
  then_g.captures = {0, 1};
  then_g.capture_operands = {1, 2};
  then_g.nodes = {node("inner", "If", {1, 0}, {2}, {1, 2})};
  then_g.outputs = {2};
  PlanGraph pass_x;  // #1 and #3: x
  pass_x.tensors = {tensor("x", DType::kFloat32, {2}, TensorKind::kInput),
                    tensor("r", DType::kFloat32, {2}, TensorKind::kActivation)};
  pass_x.captures = {0};
  pass_x.capture_operands = {1};
  pass_x.nodes = {node("copy", "Reshape", {0}, {1})};
  pass_x.outputs = {1};
  PlanGraph constant;  // #2: c
  constant.tensors = {tensor("c", DType::kFloat32, {2}, TensorKind::kConstant)};
  constant.tensors[0].weight_bytes = 8;
  constant.outputs = {0};
  PlanGraph else_x = pass_x;
  else_x.capture_operands = {1};
  p.graphs = {then_g, pass_x, constant, else_x};
  p.segments = compute_segments(p);
  return p;
}

std::vector<float> run_cpu(const Plan& plan, bool cond, bool flag, const float x[2]) {
  auto shared = std::make_shared<Plan>(plan);
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  Status st = ExecutionContext::create(shared, "cpu", &ctx, &notice);
  EXPECT_TRUE(st.is_ok()) << st.message();
  if (!st) return {};
  const uint8_t c = cond, f = flag;
  std::vector<float> y(2);
  EXPECT_TRUE(ctx->bind_input("cond", DType::kBool, {}, &c, 1).is_ok());
  EXPECT_TRUE(ctx->bind_input("flag", DType::kBool, {}, &f, 1).is_ok());
  EXPECT_TRUE(ctx->bind_input("x", DType::kFloat32, {2}, x, 8).is_ok());
  EXPECT_TRUE(ctx->bind_output("y", y.data(), 8).is_ok());
  st = ctx->run();
  EXPECT_TRUE(st.is_ok()) << st.message();
  return y;
}

TEST(PlanGraphs, RoundTripKeepsSubgraphsAndRuns) {
  const Plan p = nested_if_plan();
  ASSERT_TRUE(verify_plan(p).is_ok()) << verify_plan(p).message();
  const std::vector<uint8_t> bytes = serialize_plan(p);
  Plan q;
  Status st = parse_plan(bytes.data(), bytes.size(), &q);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(q.graphs.size(), p.graphs.size());
  for (size_t g = 0; g < p.graphs.size(); ++g) {
    EXPECT_EQ(q.graphs[g].inputs, p.graphs[g].inputs);
    EXPECT_EQ(q.graphs[g].outputs, p.graphs[g].outputs);
    EXPECT_EQ(q.graphs[g].captures, p.graphs[g].captures);
    EXPECT_EQ(q.graphs[g].capture_operands, p.graphs[g].capture_operands);
    ASSERT_EQ(q.graphs[g].nodes.size(), p.graphs[g].nodes.size());
    for (size_t n = 0; n < p.graphs[g].nodes.size(); ++n) {
      EXPECT_EQ(q.graphs[g].nodes[n].subgraphs, p.graphs[g].nodes[n].subgraphs);
      EXPECT_EQ(q.graphs[g].nodes[n].inputs, p.graphs[g].nodes[n].inputs);
      EXPECT_TRUE(q.graphs[g].nodes[n].choice.empty());
    }
    ASSERT_EQ(q.graphs[g].tensors.size(), p.graphs[g].tensors.size());
    for (size_t t = 0; t < p.graphs[g].tensors.size(); ++t) EXPECT_EQ(q.graphs[g].tensors[t].name, p.graphs[g].tensors[t].name);
  }
  EXPECT_EQ(q.nodes[0].subgraphs, p.nodes[0].subgraphs);
  EXPECT_EQ(serialize_plan(q), bytes);
  const float x[2] = {1.5f, -2.5f};
  EXPECT_EQ(run_cpu(q, true, true, x), (std::vector<float>{1.5f, -2.5f}));
  EXPECT_EQ(run_cpu(q, true, false, x), (std::vector<float>{7.0f, -7.0f}));
  EXPECT_EQ(run_cpu(q, false, false, x), (std::vector<float>{1.5f, -2.5f}));
}

TEST(PlanGraphs, StringListAttributesRoundTrip) {
  Plan p = nested_if_plan();
  p.graphs[1].nodes[0].attrs.set("names", std::vector<std::string>{"Sigmoid", "", "Tanh"});
  const std::vector<uint8_t> bytes = serialize_plan(p);
  Plan q;
  // The file format only: no op rule reads "names", so parse_plan would refuse the node.
  ASSERT_TRUE(decode_plan(bytes.data(), bytes.size(), &q).is_ok());
  EXPECT_EQ(q.graphs[1].nodes[0].attrs.get_strings("names"), (std::vector<std::string>{"Sigmoid", "", "Tanh"}));
}

struct Damage {
  const char* what;
  void (*apply)(Plan&);
  const char* expect;
};

const Damage kDamages[] = {
    {"subgraph index out of range", [](Plan& p) { p.nodes[0].subgraphs[1] = 9; }, "names subgraph index 9"},
    {"subgraph index negative", [](Plan& p) { p.nodes[0].subgraphs[0] = -1; }, "names subgraph index -1"},
    {"subgraph owned twice", [](Plan& p) { p.nodes[0].subgraphs[1] = 1; }, "belongs to two nodes"},
    {"ownership cycle", [](Plan& p) { p.graphs[0].nodes[0].subgraphs[1] = 0; }, "names subgraph index 0"},
    {"owner before its owner", [](Plan& p) { std::swap(p.graphs[0], p.graphs[3]); }, "names subgraph index"},
    {"orphan subgraph", [](Plan& p) { p.graphs.push_back(p.graphs[2]); }, "no node owns it"},
    {"capture operand out of range", [](Plan& p) { p.graphs[1].capture_operands[0] = 5; }, "names operand 5"},
    {"capture operand negative", [](Plan& p) { p.graphs[3].capture_operands[0] = -4; }, "names operand -4"},
    {"capture of another dtype", [](Plan& p) { p.graphs[0].capture_operands = {2, 2}; }, "capture 'x' is float32"},
    {"capture of another shape", [](Plan& p) { p.graphs[3].tensors[0].shape = {3}; }, "capture 'x' is float32 3"},
    {"captures and operands differ", [](Plan& p) { p.graphs[1].capture_operands.push_back(1); }, "differ in number"},
    {"capture not an input tensor", [](Plan& p) { p.graphs[1].captures[0] = 1; }, "is not an input tensor"},
    {"capture bound twice", [](Plan& p) { p.graphs[1].inputs = {0}; }, "bound twice"},
    {"unbound read", [](Plan& p) { p.graphs[1].captures.clear(); p.graphs[1].capture_operands.clear(); },
     "before it is produced"},
    {"subgraph output never produced", [](Plan& p) { p.graphs[2].outputs[0] = 3; }, "output index 3"},
    {"subgraph node writes out of range", [](Plan& p) { p.graphs[1].nodes[0].outputs[0] = 40; }, "writes tensor index 40"},
    {"subgraph node on opencl", [](Plan& p) { p.graphs[1].nodes[0].backend = Backend::kOpenCL; }, "not on the cpu"},
    {"subgraph node with a kernel choice",
     [](Plan& p) { p.graphs[1].nodes[0].choice = KernelChoice{"mma", {{"bm", 128}}}; },
     "has kernel choice 'mma[bm=128]' but runs on the cpu"},
    {"owner on opencl", [](Plan& p) { p.nodes[0].backend = Backend::kOpenCL; }, "not on the cpu backend"},
    {"subgraph constant outside the weights", [](Plan& p) { p.graphs[2].tensors[0].weight_offset = 64; },
     "outside the weights"},
    {"subgraph impossible shape", [](Plan& p) { p.graphs[1].tensors[1].shape = {int64_t{1} << 62}; }, "impossible shape"},
    {"dynamic plan with subgraphs",
     [](Plan& p) {
       p.dyn_vars = {DynVar{"N", 2, 2, 2}};
       p.dyn_inputs = {DynInputDim{2, 0, 0}};
     },
     "cannot hold subgraphs"},
};

TEST(PlanGraphs, DamagedSubgraphsAreRefused) {
  for (const Damage& d : kDamages) {
    Plan p = nested_if_plan();
    d.apply(p);
    Status st = verify_plan(p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidPlan) << d.what;
    const std::vector<uint8_t> bytes = serialize_plan(p);
    Plan q;
    st = parse_plan(bytes.data(), bytes.size(), &q);
    EXPECT_EQ(st.code(), StatusCode::kInvalidPlan) << d.what;
    EXPECT_NE(st.message().find(d.expect), std::string::npos) << d.what << ": " << st.message();
  }
}

// The compiled control_flow.onnx: every ONNX value worked out here from x.
TEST(PlanGraphs, CompiledControlFlowComputesOnEveryPath) {
  BuildOptions opts;
  opts.device = "cpu";
  auto plan = std::make_shared<Plan>();
  Status st = build_plan_from_file(model_path("control_flow.onnx"), opts, plan.get());
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_FALSE(plan->graphs.empty());
  float x[12];
  for (int i = 0; i < 12; ++i) x[i] = static_cast<float>(i) - 5.5f;
  for (int path = 0; path < 3; ++path) {
    const uint8_t cond = path < 2, flag = path == 0;
    const int64_t m = path + 1;
    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
    std::vector<float> y_if(12), y_loop(12), y_state(4), y_scan(12);
    ASSERT_TRUE(ctx->bind_input("cond", DType::kBool, {}, &cond, 1).is_ok());
    ASSERT_TRUE(ctx->bind_input("flag", DType::kBool, {}, &flag, 1).is_ok());
    ASSERT_TRUE(ctx->bind_input("x", DType::kFloat32, {3, 4}, x, 48).is_ok());
    ASSERT_TRUE(ctx->bind_input("m", DType::kInt64, {}, &m, 8).is_ok());
    ASSERT_TRUE(ctx->bind_output("y_if", y_if.data(), 48).is_ok());
    ASSERT_TRUE(ctx->bind_output("y_loop", y_loop.data(), 48).is_ok());
    ASSERT_TRUE(ctx->bind_output("y_state", y_state.data(), 16).is_ok());
    ASSERT_TRUE(ctx->bind_output("y_scan", y_scan.data(), 48).is_ok());
    st = ctx->run();
    ASSERT_TRUE(st.is_ok()) << st.message();
    float acc[4] = {0, 0, 0, 0};
    for (int i = 0; i < 12; ++i) {
      const float want_if = !cond ? 3 * x[i] : flag ? std::max(x[i], 0.0f) : -x[i];
      EXPECT_FLOAT_EQ(y_if[i], want_if) << "path " << path << " element " << i;
      EXPECT_FLOAT_EQ(y_loop[i], x[i] * static_cast<float>(m + 1)) << "path " << path;
      acc[i % 4] += x[i];
      EXPECT_FLOAT_EQ(y_scan[i], 2 * acc[i % 4]);
    }
    for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(y_state[j], acc[j]);
  }
}

// Random damage with a valid checksum on a compiled plan with every control-flow op: the loader
// refuses it cleanly or accepts it, and an accepted plan runs (or fails) without crashing.
TEST(PlanGraphs, RandomMutationsNeverCrashLoaderOrExecutor) {
  BuildOptions opts;
  opts.device = "cpu";
  Plan plan;
  ASSERT_TRUE(build_plan_from_file(model_path("control_flow.onnx"), opts, &plan).is_ok());
  const std::vector<uint8_t> good = serialize_plan(plan);
  uint64_t meta_off, meta_len;
  std::memcpy(&meta_off, good.data() + 64 + 8, 8);
  std::memcpy(&meta_len, good.data() + 64 + 16, 8);
  std::mt19937 rng(99);
  int refused = 0, ran = 0;
  float x[12] = {0};
  const uint8_t t = 1;
  const int64_t m = 3;
  for (int iter = 0; iter < 1500; ++iter) {
    std::vector<uint8_t> bad = good;
    for (int e = 0, edits = 1 + static_cast<int>(rng() % 3); e < edits; ++e) {
      const size_t at = meta_off + rng() % meta_len;
      bad[at] = (rng() % 2) ? static_cast<uint8_t>(rng()) : static_cast<uint8_t>(bad[at] ^ (1u << (rng() % 8)));
    }
    fix_plan_checksum(&bad);
    auto q = std::make_shared<Plan>();
    Status st = parse_plan(bad.data(), bad.size(), q.get());
    if (!st) {
      ++refused;
      // An edited op name is an op this runtime lacks (unsupported); anything else is invalid.
      ASSERT_TRUE(st.code() == StatusCode::kInvalidPlan || st.code() == StatusCode::kUnsupported) << st.message();
      continue;
    }
    // A mutated dim can make a tensor of terabytes, which is legal but not worth allocating here.
    uint64_t largest = 0;
    for (const PlanTensor& pt : q->tensors) largest = std::max(largest, pt.bytes());
    for (const PlanGraph& g : q->graphs)
      for (const PlanTensor& pt : g.tensors) largest = std::max(largest, pt.bytes());
    if (largest > 4096) continue;
    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    if (!ExecutionContext::create(q, "cpu", &ctx, &notice)) continue;
    std::vector<std::vector<uint8_t>> outs;
    for (int32_t in : q->inputs) {
      const PlanTensor& pt = q->tensors[in];
      const void* data = pt.dtype == DType::kBool ? static_cast<const void*>(&t)
                         : pt.dtype == DType::kInt64 ? static_cast<const void*>(&m) : static_cast<const void*>(x);
      if (pt.bytes() <= 48) (void)ctx->bind_input(pt.name, pt.dtype, pt.shape, data, pt.bytes());
    }
    for (int32_t o : q->outputs) {
      outs.emplace_back(q->tensors[o].bytes());
      (void)ctx->bind_output(q->tensors[o].name, outs.back().data(), outs.back().size());
    }
    (void)ctx->run();
    ++ran;
  }
  EXPECT_GT(refused, 200);
  EXPECT_GT(ran, 50);
}

}  // namespace
}  // namespace kiln::test
