// FP8 post-training quantization (compiler/passes/quantize_ptq.cpp) on a small Conv + Gemm
// graph: the plan stores FP8 weights that are exactly the spec's cast of w / (max|w_c| / qmax)
// per output channel, the activation scale is the calibrated max|x| / qmax (minmax, FP8's
// default calibrator), the Gemm runs as Fp8MatMul on B^T with C as its bias, and the quantized
// plan's output stays close to the FP32 plan's.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/core/float8.h"
#include "runtime/core/npy.h"
#include "runtime/exec/execution_context.h"
#include "tests/unit/unit_util.h"

namespace kiln::test {
namespace {

std::shared_ptr<HostTensor> random_f32(const Shape& s, std::mt19937& rng, float lo, float hi) {
  auto t = std::make_shared<HostTensor>(DType::kFloat32, s);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t->numel(); ++i) t->as<float>()[i] = u(rng);
  return t;
}

struct Model {
  std::shared_ptr<HostTensor> w, b, gw, gc;
};

// x [1,8,6,6] -> Conv(w [4,8,3,3], b) -> Flatten -> Gemm(transB: gw [5,64], gc [5]) -> y
void build_graph(const Model& m, ir::Graph* g) {
  g->name = "ptq";
  g->opsets[""] = 13;
  ir::Value* x = g->add_value("x");
  x->dtype = DType::kFloat32;
  x->shape = {1, 8, 6, 6};
  x->has_shape = true;
  x->is_graph_input = true;
  g->inputs.push_back(x);
  auto node = [&](const std::string& op, const std::string& name, std::vector<ir::Value*> in, const std::string& out) {
    ir::Node* n = g->add_node(op, name);
    n->inputs = std::move(in);
    ir::Value* v = g->add_value(out);
    v->producer = n;
    n->outputs = {v};
    return n;
  };
  ir::Node* conv = node("Conv", "conv", {x, g->add_constant("w", m.w), g->add_constant("b", m.b)}, "c");
  ir::Node* flat = node("Flatten", "flatten", {conv->outputs[0]}, "f");
  ir::Node* gemm = node("Gemm", "gemm", {flat->outputs[0], g->add_constant("gw", m.gw), g->add_constant("gc", m.gc)}, "y");
  gemm->attrs.set("transB", int64_t{1});
  g->outputs.push_back(gemm->outputs[0]);
}

const HostTensor& constant(const Plan& p, int32_t t, std::vector<std::shared_ptr<HostTensor>>* keep) {
  const PlanTensor& pt = p.tensors[t];
  EXPECT_EQ(pt.kind, TensorKind::kConstant) << pt.name;
  auto h = std::make_shared<HostTensor>(pt.dtype, pt.shape);
  std::copy_n(p.weights.data() + pt.weight_offset, h->size_bytes(), h->data());
  keep->push_back(h);
  return *h;
}

std::vector<float> run(const std::shared_ptr<Plan>& plan, const HostTensor& x) {
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  EXPECT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
  std::vector<float> y(5);
  EXPECT_TRUE(ctx->bind_input("x", DType::kFloat32, x.shape(), x.data(), x.size_bytes()).is_ok());
  EXPECT_TRUE(ctx->bind_output("y", y.data(), y.size() * 4).is_ok());
  Status st = ctx->run();
  EXPECT_TRUE(st.is_ok()) << st.message();
  return y;
}

TEST(QuantizePtq, Fp8WeightsScalesAndOutputs) {
  std::mt19937 rng(8);
  const Model m{random_f32({4, 8, 3, 3}, rng, -0.7f, 0.7f), random_f32({4}, rng, -0.1f, 0.1f),
                random_f32({5, 64}, rng, -0.2f, 0.2f), random_f32({5}, rng, -0.1f, 0.1f)};
  m.w->as<float>()[30] = 3.f;  // one outlier channel: per-channel scales keep the others fine
  const std::string dir = scratch_dir("ptq_calib");
  float x_amax = 0;
  for (int i = 0; i < 3; ++i) {
    auto s = random_f32({1, 8, 6, 6}, rng, -1.5f, 1.5f);
    for (int64_t j = 0; j < s->numel(); ++j) x_amax = std::max(x_amax, std::fabs(s->as<float>()[j]));
    ASSERT_TRUE(write_npy(dir + "/" + std::to_string(i) + ".npy", *s).is_ok());
  }
  const HostTensor x = *random_f32({1, 8, 6, 6}, rng, -1.f, 1.f);
  auto fp32 = std::make_shared<Plan>();
  {
    ir::Graph g;
    build_graph(m, &g);
    BuildOptions o;
    o.device = "cpu";
    ASSERT_TRUE(build_plan_from_graph(g, o, fp32.get()).is_ok());
  }
  const std::vector<float> want = run(fp32, x);

  for (const auto& [prec, dtype, qmax] : {std::tuple{"fp8", DType::kFloat8E4M3FN, 448.f},
                                          std::tuple{"fp8-e5m2", DType::kFloat8E5M2, 57344.f}}) {
    SCOPED_TRACE(prec);
    ir::Graph g;
    build_graph(m, &g);
    BuildOptions o;
    o.device = "cpu";
    o.precision = prec;
    o.calib_dir = dir;
    o.bias_correction = false;  // C and the layout below exactly as quantized (bias_correction_test.cpp)
    auto plan = std::make_shared<Plan>();
    Status st = build_plan_from_graph(g, o, plan.get());
    ASSERT_TRUE(st.is_ok()) << st.message();
    std::vector<std::shared_ptr<HostTensor>> keep;
    const PlanNode* conv = nullptr;
    const PlanNode* gemm = nullptr;
    for (const PlanNode& n : plan->nodes) {
      if (n.name == "conv") conv = &n;
      if (n.name == "gemm") gemm = &n;
    }
    ASSERT_TRUE(conv && gemm);
    ASSERT_EQ(conv->op, "Fp8Conv");
    ASSERT_EQ(gemm->op, "Fp8MatMul");
    EXPECT_EQ(constant(*plan, conv->inputs[1], &keep).as<float>()[0], x_amax / qmax);
    // Conv weights: per output channel.
    const HostTensor& wq = constant(*plan, conv->inputs[2], &keep);
    const HostTensor& ws = constant(*plan, conv->inputs[3], &keep);
    ASSERT_EQ(wq.dtype(), dtype);
    ASSERT_EQ(ws.shape(), (Shape{4}));
    for (int c = 0; c < 4; ++c) {
      float amax = 0;
      for (int i = 0; i < 72; ++i) amax = std::max(amax, std::fabs(m.w->as<float>()[c * 72 + i]));
      EXPECT_EQ(ws.as<float>()[c], amax / qmax) << "channel " << c;
      for (int i = 0; i < 72; ++i)
        ASSERT_EQ(wq.as<uint8_t>()[c * 72 + i], float_to_float8(dtype, m.w->as<float>()[c * 72 + i] / (amax / qmax), true))
            << "channel " << c << " element " << i;
    }
    // Gemm: B^T stored as [K, N] with a scale per column N, C as the kernel's bias.
    const HostTensor& gq = constant(*plan, gemm->inputs[2], &keep);
    const HostTensor& gs = constant(*plan, gemm->inputs[3], &keep);
    ASSERT_EQ(gq.shape(), (Shape{64, 5}));
    for (int nn = 0; nn < 5; ++nn)
      for (int k = 0; k < 64; ++k)
        ASSERT_EQ(gq.as<uint8_t>()[k * 5 + nn], float_to_float8(dtype, m.gw->as<float>()[nn * 64 + k] / gs.as<float>()[nn], true));
    const HostTensor& bias = constant(*plan, gemm->inputs[5], &keep);
    for (int nn = 0; nn < 5; ++nn) EXPECT_EQ(bias.as<float>()[nn], m.gc->as<float>()[nn]);

    const std::vector<float> got = run(plan, x);
    double dot = 0, na = 0, nb = 0;
    for (int i = 0; i < 5; ++i) dot += got[i] * want[i], na += got[i] * got[i], nb += want[i] * want[i];
    EXPECT_GT(dot / std::sqrt(na * nb), 0.99) << "cosine vs FP32";
  }
}

}  // namespace
}  // namespace kiln::test
