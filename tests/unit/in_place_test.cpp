// In-place ops in the memory planner: on a model whose peak is an elementwise chain and two
// Reshapes, the planned peak drops on both backends, and the outputs are bit-identical to runs
// with in-place turned off (KILN_NO_INPLACE=1) and match a reference computed here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/exec/execution_context.h"
#include "runtime/exec/memory_plan.h"
#include "tests/ops/op_harness.h"

namespace kiln {
namespace {

struct Model {
  Plan plan;
  HostTensor w1, w2;
};

// x[64,16] -> MatMul(w1[16,64]) -> Abs -> Sqrt -> Reshape [4096] -> Reshape [64,64] -> MatMul(w2[64,4]) -> y.
Model build(const std::string& device) {
  Model m;
  ir::Graph g;
  g.opsets[""] = 17;
  std::mt19937 rng(5);
  ir::Value* x = g.add_value("x");
  x->dtype = DType::kFloat32;
  x->shape = {64, 16};
  x->has_shape = true;
  x->is_graph_input = true;
  g.inputs.push_back(x);
  auto constant = [&](const std::string& name, HostTensor t) {
    ir::Value* v = g.add_value(name);
    v->dtype = t.dtype();
    v->shape = t.shape();
    v->has_shape = true;
    v->constant = std::make_shared<HostTensor>(std::move(t));
    return v;
  };
  auto shape_const = [&](const std::string& name, Shape s) {
    HostTensor t(DType::kInt64, {static_cast<int64_t>(s.size())});
    for (size_t i = 0; i < s.size(); ++i) t.as<int64_t>()[i] = s[i];
    return constant(name, std::move(t));
  };
  auto node = [&](const std::string& op, const std::string& name, std::vector<ir::Value*> ins) {
    ir::Node* nd = g.add_node(op, name);
    ir::Value* out = g.add_value(name + "_out");
    out->producer = nd;
    nd->inputs = std::move(ins);
    nd->outputs = {out};
    return out;
  };
  m.w1 = test::random_tensor(DType::kFloat32, {16, 64}, rng);
  m.w2 = test::random_tensor(DType::kFloat32, {64, 4}, rng);
  ir::Value* h = node("MatMul", "mm1", {x, constant("w1", m.w1)});
  ir::Value* e = node("Sqrt", "sqrt", {node("Abs", "abs", {h})});
  ir::Value* flat = node("Reshape", "flatten", {e, shape_const("s1", {4096})});
  ir::Value* sq = node("Reshape", "square", {flat, shape_const("s2", {64, 64})});
  g.outputs.push_back(node("MatMul", "mm2", {sq, constant("w2", m.w2)}));
  BuildOptions opts;
  opts.device = device;
  Status st = build_plan_from_graph(g, opts, &m.plan);
  EXPECT_TRUE(st.is_ok()) << st.message();
  return m;
}

std::vector<float> run(const Model& m, const std::string& device, const std::vector<float>& x, bool in_place,
                       uint64_t* host_peak, uint64_t* dev_peak) {
  if (in_place) unsetenv("KILN_NO_INPLACE");
  else setenv("KILN_NO_INPLACE", "1", 1);
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  Status st = ExecutionContext::create(std::make_shared<Plan>(m.plan), device, &ctx, &notice);
  unsetenv("KILN_NO_INPLACE");
  EXPECT_TRUE(st.is_ok()) << st.message();
  if (!st) return {};
  std::vector<float> y(256);
  EXPECT_TRUE(ctx->bind_input("x", DType::kFloat32, {64, 16}, x.data(), x.size() * 4).is_ok());
  EXPECT_TRUE(ctx->bind_output("mm2_out", y.data(), y.size() * 4).is_ok());
  st = ctx->run();
  EXPECT_TRUE(st.is_ok()) << st.message();
  *host_peak = ctx->host_arena_bytes();
  *dev_peak = ctx->device_arena_bytes();
  return y;
}

void check(const std::string& device) {
  const Model m = build(device);
  std::vector<Backend> backends;
  for (const PlanNode& n : m.plan.nodes) backends.push_back(n.backend);
  const Backend b = device == "cpu" ? Backend::kCpu : Backend::kOpenCL;
  size_t joined = 0;
  const std::vector<int32_t> root = in_place_roots(m.plan, backends, b);
  for (size_t t = 0; t < root.size(); ++t) joined += root[t] != static_cast<int32_t>(t);
  EXPECT_GE(joined, 2u) << "the Sqrt(Abs) program and both Reshapes can write over their inputs";

  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(64 * 16);
  for (float& v : x) v = u(rng);
  uint64_t host_in, dev_in, host_sep, dev_sep;
  const std::vector<float> with = run(m, device, x, true, &host_in, &dev_in);
  const std::vector<float> without = run(m, device, x, false, &host_sep, &dev_sep);
  const uint64_t peak_in = b == Backend::kCpu ? host_in : dev_in, peak_sep = b == Backend::kCpu ? host_sep : dev_sep;
  EXPECT_LT(peak_in, peak_sep) << device << ": in-place should lower the peak";
  std::printf("%s: peak activations %llu B with in-place ops, %llu B without\n", device.c_str(),
              static_cast<unsigned long long>(peak_in), static_cast<unsigned long long>(peak_sep));
  ASSERT_EQ(with.size(), without.size());
  EXPECT_EQ(with, without) << "in-place changed the results";
  // Reference: sqrt(|x w1|) w2 in double.
  const float* w1 = m.w1.as<float>();
  const float* w2 = m.w2.as<float>();
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 4; ++j) {
      double acc = 0;
      for (int k = 0; k < 64; ++k) {
        double h = 0;
        for (int c = 0; c < 16; ++c) h += static_cast<double>(x[i * 16 + c]) * w1[c * 64 + k];
        acc += std::sqrt(std::fabs(h)) * w2[k * 4 + j];
      }
      ASSERT_NEAR(with[i * 4 + j], acc, 1e-4 * (1 + std::fabs(acc))) << device << " y[" << i << "," << j << "]";
    }
}

TEST(InPlace, LowersPeakAndKeepsResultsCpu) { check("cpu"); }
TEST(InPlace, LowersPeakAndKeepsResultsOpenCL) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  check("opencl");
}

}  // namespace
}  // namespace kiln
