// The pieces of the accuracy tools: error statistics against hand-computed values, the
// execution context's tensor observer (kiln compare --per-layer) on both backends, and the
// cost model counting integer convolutions and matrix products like their float forms (what
// --precision best ranks by), and an output that a Concat joins measured part by part
// (output_parts: a detector's class probabilities beside its box coordinates in pixels).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "compiler/quant/accuracy.h"
#include "runtime/device/devices.h"
#include "runtime/exec/execution_context.h"
#include "runtime/profile/node_cost.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln {
namespace {

HostTensor vec(std::vector<float> v) {
  HostTensor t(DType::kFloat32, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.as<float>()[i] = v[i];
  return t;
}

TEST(Accuracy, CompareTensorsMatchesHandComputedErrors) {
  const HostTensor got = vec({1, 2, 3, 0}), want = vec({1, 2, 4, 0});
  const TensorErrors e = compare_tensors(got.view(), want.view());
  EXPECT_DOUBLE_EQ(e.max_abs, 1.0);
  EXPECT_DOUBLE_EQ(e.mean_abs, 0.25);
  EXPECT_DOUBLE_EQ(e.max_rel, 0.25);  // |3-4| / 4; the zero reference element is skipped
  EXPECT_NEAR(e.rel_l2, 1 / std::sqrt(21.0), 1e-12);
  EXPECT_NEAR(e.cosine, 17 / std::sqrt(14.0 * 21.0), 1e-12);
  const TensorErrors same = compare_tensors(want.view(), want.view());
  EXPECT_EQ(same.rel_l2, 0);
  EXPECT_NEAR(same.cosine, 1, 1e-12);
  const HostTensor zero = vec({0, 0}), off = vec({3, 4});
  EXPECT_DOUBLE_EQ(compare_tensors(off.view(), zero.view()).rel_l2, 5.0);  // absolute when want is 0
}

// in[4,8] -> MatMul(W) -> Relu -> Neg -> out, unfused so every tensor is a node output.
std::shared_ptr<Plan> matmul_relu_neg(HostTensor* x, HostTensor* w) {
  std::mt19937 rng(5);
  *x = test::random_tensor(DType::kFloat32, {4, 8}, rng);
  *w = test::random_tensor(DType::kFloat32, {8, 6}, rng);
  ir::Graph g;
  g.opsets[""] = 17;
  ir::Value* in = g.add_value("in");
  in->dtype = DType::kFloat32;
  in->shape = {4, 8};
  in->has_shape = true;
  in->is_graph_input = true;
  g.inputs.push_back(in);
  ir::Value* wv = g.add_value("w");
  wv->dtype = DType::kFloat32;
  wv->shape = {8, 6};
  wv->has_shape = true;
  wv->constant = std::make_shared<HostTensor>(*w);
  auto node = [&](const std::string& op, const std::string& name, std::vector<ir::Value*> ins) {
    ir::Node* nd = g.add_node(op, name);
    ir::Value* out = g.add_value(name + "_out");
    out->producer = nd;
    nd->inputs = std::move(ins);
    nd->outputs = {out};
    return out;
  };
  ir::Value* a = node("MatMul", "mm", {in, wv});
  ir::Value* b = node("Relu", "relu", {a});
  g.outputs.push_back(node("Neg", "neg", {b}));
  BuildOptions opts;
  opts.device = "cpu";
  opts.fuse = false;
  auto p = std::make_shared<Plan>();
  EXPECT_TRUE(build_plan_from_graph(g, opts, p.get()).is_ok());
  return p;
}

TEST(Accuracy, TensorObserverSeesEveryNodeOutputOnEachBackend) {
  HostTensor x, w;
  std::shared_ptr<Plan> plan = matmul_relu_neg(&x, &w);
  ASSERT_EQ(plan->nodes.size(), 3u);
  // relu(x @ w) computed here.
  std::vector<float> relu(24);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 6; ++j) {
      float s = 0;
      for (int k = 0; k < 8; ++k) s += x.as<float>()[i * 8 + k] * w.as<float>()[k * 6 + j];
      relu[i * 6 + j] = std::max(0.f, s);
    }
  std::vector<std::string> devices = {"cpu"};
  if (!opencl_devices().empty()) devices.push_back("opencl");
  for (const std::string& dev : devices) {
    SCOPED_TRACE(dev);
    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    ASSERT_TRUE(ExecutionContext::create(plan, dev, &ctx, &notice).is_ok());
    HostTensor out(DType::kFloat32, {4, 6});
    ASSERT_TRUE(ctx->bind_input("in", x.dtype(), x.shape(), x.data(), x.size_bytes()).is_ok());
    ASSERT_TRUE(ctx->bind_output("neg_out", out.data(), out.size_bytes()).is_ok());
    std::vector<std::string> order;
    std::map<std::string, std::vector<float>> seen;
    ctx->set_tensor_observer([&](int32_t t, const TensorView& v) {
      order.push_back(plan->tensors[t].name);
      const float* f = static_cast<const float*>(v.data);
      seen[plan->tensors[t].name].assign(f, f + shape_numel(v.shape));
      return Status::ok();
    });
    ASSERT_TRUE(ctx->run().is_ok());
    EXPECT_EQ(order, (std::vector<std::string>{"mm_out", "relu_out", "neg_out"}));
    for (int i = 0; i < 24; ++i) {
      EXPECT_NEAR(seen["relu_out"][i], relu[i], 1e-4) << i;
      EXPECT_EQ(seen["neg_out"][i], out.as<float>()[i]) << i;
    }
    // An observer error stops the run and reaches the caller; clearing it turns it off.
    ctx->set_tensor_observer([](int32_t, const TensorView&) { return internal_error("observer says no"); });
    Status st = ctx->run();
    EXPECT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("observer says no"), std::string::npos);
    ctx->set_tensor_observer(nullptr);
    EXPECT_TRUE(ctx->run().is_ok());
  }
}

TEST(Accuracy, CostModelCountsIntegerLinearOpsLikeFloatOnes) {
  Plan p;
  auto tensor = [&](DType dt, Shape s) {
    PlanTensor t;
    t.name = "t" + std::to_string(p.tensors.size());
    t.dtype = dt;
    t.shape = std::move(s);
    p.tensors.push_back(t);
    return static_cast<int32_t>(p.tensors.size() - 1);
  };
  const int32_t x = tensor(DType::kFloat32, {1, 8, 16, 16}), w = tensor(DType::kFloat32, {4, 8, 3, 3}),
                y = tensor(DType::kFloat32, {1, 4, 16, 16});
  const int32_t xq = tensor(DType::kInt8, {1, 8, 16, 16}), wq = tensor(DType::kInt8, {4, 8, 3, 3}),
                yq = tensor(DType::kInt8, {1, 4, 16, 16}), s = tensor(DType::kFloat32, {}), z = tensor(DType::kInt8, {});
  PlanNode conv{"c", "Conv", {}, {x, w}, {y}, Backend::kCpu, "", {}};
  PlanNode qconv{"q", "QLinearConv", {}, {xq, s, z, wq, s, z, s, z}, {yq}, Backend::kCpu, "", {}};
  PlanNode iconv{"i", "ConvInteger", {}, {xq, wq}, {y}, Backend::kCpu, "", {}};
  const double flops = 2.0 * (4 * 16 * 16) * (8 * 3 * 3);
  EXPECT_DOUBLE_EQ(node_cost(p, conv).flops, flops);
  EXPECT_DOUBLE_EQ(node_cost(p, qconv).flops, flops);
  EXPECT_DOUBLE_EQ(node_cost(p, iconv).flops, flops);
  EXPECT_LT(node_cost(p, qconv).bytes, node_cost(p, conv).bytes);

  const int32_t a = tensor(DType::kFloat32, {2, 32}), b = tensor(DType::kFloat32, {32, 5}), c = tensor(DType::kFloat32, {2, 5});
  const int32_t aq = tensor(DType::kInt8, {2, 32}), bq = tensor(DType::kInt8, {32, 5}), cq = tensor(DType::kInt8, {2, 5});
  PlanNode mm{"m", "MatMul", {}, {a, b}, {c}, Backend::kCpu, "", {}};
  PlanNode qmm{"qm", "QLinearMatMul", {}, {aq, s, z, bq, s, z, s, z}, {cq}, Backend::kCpu, "", {}};
  PlanNode imm{"im", "MatMulInteger", {}, {aq, bq}, {c}, Backend::kCpu, "", {}};
  EXPECT_DOUBLE_EQ(node_cost(p, mm).flops, 2.0 * 10 * 32);
  EXPECT_DOUBLE_EQ(node_cost(p, qmm).flops, 2.0 * 10 * 32);
  EXPECT_DOUBLE_EQ(node_cost(p, imm).flops, 2.0 * 10 * 32);
}

}  // namespace
}  // namespace kiln

namespace kiln::test {
namespace {

// boxes [1, 4, 50] * 300 (pixels) and Sigmoid(logits) [1, 3, 50] joined along `axis` (1 or -2),
// and Relu(boxes) as a second output that no Concat writes.
struct Detector {
  std::shared_ptr<Plan> plan;
  std::vector<CalibrationSample> samples;
};

Detector detector(int64_t axis) {
  std::mt19937 rng(7);
  GraphBuilder b;
  const std::string boxes = b.input(random_tensor(DType::kFloat32, {1, 4, 50}, rng));
  const std::string logits = b.input(random_tensor(DType::kFloat32, {1, 3, 50}, rng, -4.0, 4.0));
  HostTensor scale(DType::kFloat32, {1});
  scale.as<float>()[0] = 300.0f;
  const std::string pixels = b.node("Mul", {boxes, b.constant(scale)});
  Attributes concat;
  concat.set("axis", axis);
  const std::string joined = b.node("Concat", {pixels, b.node("Sigmoid", {logits})}, concat);
  b.output(joined);
  b.output(b.node("Relu", {boxes}));
  Detector d;
  const Status st = b.build(&d.plan);
  EXPECT_TRUE(st.is_ok()) << st.message();
  d.samples.push_back({{"x0", b.inputs()[0]}, {"x1", b.inputs()[1]}});
  return d;
}

TEST(Accuracy, ConcatOutputIsMeasuredPartByPart) {
  for (int64_t axis : {1, -2}) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    Detector d = detector(axis);
    ASSERT_TRUE(d.plan);
    const OutputParts parts = output_parts(*d.plan, d.plan->outputs[0]);
    EXPECT_EQ(parts.axis, 1);
    ASSERT_EQ(parts.ranges.size(), 2u);
    EXPECT_EQ(parts.ranges[0], std::make_pair(int64_t{0}, int64_t{4}));
    EXPECT_EQ(parts.ranges[1], std::make_pair(int64_t{4}, int64_t{7}));
    EXPECT_TRUE(output_parts(*d.plan, d.plan->outputs[1]).ranges.empty());

    std::vector<std::vector<HostTensor>> want, got;
    Status st = run_on_samples(d.plan, "cpu", d.samples, &want);
    ASSERT_TRUE(st.is_ok()) << st.message();
    got = want;
    // Every probability 30% low, the pixels exact: the probabilities' own relative L2 is 0.3.
    float* y = got[0][0].as<float>();
    for (int64_t c = 4; c < 7; ++c)
      for (int64_t i = 0; i < 50; ++i) y[c * 50 + i] *= 0.7f;
    const double whole = compare_tensors(got[0][0].view(), want[0][0].view()).rel_l2;
    EXPECT_LT(whole, 0.01);  // what the whole tensor's measure saw
    EXPECT_NEAR(compare_part(got[0][0].view(), want[0][0].view(), 1, 4, 7).rel_l2, 0.3, 1e-6);
    EXPECT_EQ(compare_part(got[0][0].view(), want[0][0].view(), 1, 0, 4).rel_l2, 0.0);

    WorstError worst;
    st = worst_output_error(*d.plan, got, *d.plan, want, &worst);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_NEAR(worst.rel_l2, 0.3, 1e-6);
    EXPECT_EQ(worst.output, d.plan->tensors[d.plan->outputs[0]].name);
    EXPECT_EQ(worst.part, "[4:7 along axis 1]");
  }
}

// A photo without objects: every class probability near 0 in sample 0 (logits -12), and all of
// them 30% low there. Judged at the part's RMS norm over both samples, that is no error worth
// moving a layer for; sample 1's probabilities 30% low are.
TEST(Accuracy, AnAllButZeroPartIsJudgedAtItsUsualScale) {
  Detector d = detector(1);
  ASSERT_TRUE(d.plan);
  CalibrationSample empty = d.samples[0];
  float* logits = empty.at("x1").as<float>();
  for (int64_t i = 0; i < 150; ++i) logits[i] = -12.0f;
  d.samples.insert(d.samples.begin(), empty);
  std::vector<std::vector<HostTensor>> want, got;
  Status st = run_on_samples(d.plan, "cpu", d.samples, &want);
  ASSERT_TRUE(st.is_ok()) << st.message();
  auto scale_probabilities = [&](size_t sample, float f) {
    float* y = got[sample][0].as<float>();
    for (int64_t i = 4 * 50; i < 7 * 50; ++i) y[i] *= f;
  };
  got = want;
  scale_probabilities(0, 0.7f);
  EXPECT_NEAR(compare_part(got[0][0].view(), want[0][0].view(), 1, 4, 7).rel_l2, 0.3, 1e-5);  // on its own scale
  WorstError worst;
  ASSERT_TRUE(worst_output_error(*d.plan, got, *d.plan, want, &worst).is_ok());
  EXPECT_LT(worst.rel_l2, 1e-4);
  scale_probabilities(1, 0.7f);
  ASSERT_TRUE(worst_output_error(*d.plan, got, *d.plan, want, &worst).is_ok());
  EXPECT_NEAR(worst.rel_l2, 0.3, 1e-5);
  EXPECT_EQ(worst.sample, 1u);
}

// A part along an inner axis: rows of a [2, 3, 5] tensor whose middle index is in [1, 3).
TEST(Accuracy, ComparePartReadsTheSliceOfEveryOuterIndex) {
  HostTensor want(DType::kFloat32, {2, 3, 5}), got(DType::kFloat32, {2, 3, 5});
  for (int64_t i = 0; i < 30; ++i) {
    want.as<float>()[i] = static_cast<float>(i + 1);
    const int64_t mid = i / 5 % 3;
    got.as<float>()[i] = want.as<float>()[i] + (mid >= 1 ? 1.0f : 100.0f);
  }
  // Inside the slice every element is off by exactly 1: max 1, mean 1.
  const TensorErrors e = compare_part(got.view(), want.view(), 1, 1, 3);
  EXPECT_EQ(e.max_abs, 1.0);
  EXPECT_EQ(e.mean_abs, 1.0);
  double want2 = 0;
  for (int64_t i = 0; i < 30; ++i)
    if (i / 5 % 3 >= 1) want2 += static_cast<double>(want.as<float>()[i]) * want.as<float>()[i];
  EXPECT_NEAR(e.rel_l2, std::sqrt(20.0 / want2), 1e-12);
}

// Class scores [2, 5] from a Softmax: a change far below the 0.1 budget in relative L2 that
// swaps one row's top two classes is over the budget ("top-1 margin"); the same change without
// the swap is judged by the margin it used, and other outputs (a Gemm's, a Relu's) by relative
// L2 only. (The values below stand for probabilities; the test sets them by hand.)
TEST(Accuracy, AClassScoreOutputKeepsItsTopClass) {
  std::mt19937 rng(3);
  GraphBuilder b;
  const std::string x = b.input(random_tensor(DType::kFloat32, {2, 4}, rng));
  const std::string logits = b.node("Gemm", {x, b.constant(random_tensor(DType::kFloat32, {4, 5}, rng))});
  Attributes last;
  last.set("axis", int64_t{-1});
  b.output(b.node("Softmax", {logits}, last));
  b.output(b.node("Relu", {x}));
  b.output(logits);
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(b.build(&plan).is_ok());
  EXPECT_TRUE(is_class_scores(*plan, plan->outputs[0]));
  EXPECT_FALSE(is_class_scores(*plan, plan->outputs[1]));
  EXPECT_FALSE(is_class_scores(*plan, plan->outputs[2]));

  // Rows: [10, 9, 0, 0, 0] (margin 1) and [0, 0, 10, 0, 0].
  std::vector<std::vector<HostTensor>> want(1), got;
  want[0].emplace_back(DType::kFloat32, Shape{2, 5});
  want[0].emplace_back(DType::kFloat32, Shape{2, 4});
  want[0].emplace_back(DType::kFloat32, Shape{2, 5});
  std::fill(want[0][2].as<float>(), want[0][2].as<float>() + 10, 1.f);
  float* w = want[0][0].as<float>();
  std::fill(w, w + 10, 0.f);
  w[0] = 10, w[1] = 9, w[7] = 10;
  std::fill(want[0][1].as<float>(), want[0][1].as<float>() + 8, 1.f);
  got = want;
  float* g = got[0][0].as<float>();
  g[1] = 9.6f;  // closes 0.6 of the 1.0 gap: the top class holds
  EXPECT_NEAR(top1_margin_ratio(got[0][0].view(), want[0][0].view()), 0.6, 1e-5);
  WorstError worst;
  ASSERT_TRUE(worst_output_error(*plan, got, *plan, want, &worst, 0.1).is_ok());
  EXPECT_NEAR(worst.rel_l2, 0.06, 1e-5);
  EXPECT_EQ(worst.part, "top-1 margin");
  g[1] = 10.2f;  // overtakes it: relative L2 0.085, under the budget, but the top class changed
  EXPECT_LT(compare_tensors(got[0][0].view(), want[0][0].view()).rel_l2, 0.1);
  EXPECT_NEAR(top1_margin_ratio(got[0][0].view(), want[0][0].view()), 1.2, 1e-5);
  ASSERT_TRUE(worst_output_error(*plan, got, *plan, want, &worst, 0.1).is_ok());
  EXPECT_GT(worst.rel_l2, 0.1);
  EXPECT_EQ(worst.output, plan->tensors[plan->outputs[0]].name);
  ASSERT_TRUE(worst_output_error(*plan, got, *plan, want, &worst).is_ok());  // no budget: L2 only
  EXPECT_LT(worst.rel_l2, 0.1);
  // A near tie (gap 0.01, floor 0.1 x (10 - the row's mean 3.998) = 0.6002) may swap within it.
  w[1] = 9.99f;
  g[1] = 10.2f;
  EXPECT_NEAR(top1_margin_ratio(got[0][0].view(), want[0][0].view()), 0.21 / 0.6002, 1e-4);
  // Lower classes rising is judged against their own, larger gaps.
  g[1] = 9.99f;
  g[9] = 5.f;  // row 2: class 4 from 0 to 5, gap 10
  EXPECT_NEAR(top1_margin_ratio(got[0][0].view(), want[0][0].view()), 0.5, 1e-5);
}

}  // namespace
}  // namespace kiln::test
