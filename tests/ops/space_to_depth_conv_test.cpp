// Strided convolutions over few channels (image stems) in their space-to-depth form
// (compiler/passes/space_to_depth_conv.h), taken into a channels-last region with the MaxPool after
// them (compiler/passes/channels_last.cpp): forced NHWC on the cpu's reference and the portable
// OpenCL kernels, and by default on the FP16 tensor cores (emulated on PoCL by ctest
// mma_variant_emulated), against the NCHW plan of the cpu's reference kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/core/npy.h"
#include "runtime/device/devices.h"
#include "runtime/exec/execution_context.h"
#include "runtime/ops/channels_last.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

// x [N, C, H, W] -> Relu(Conv k x k stride s, pads (C -> C1, bias)) -> MaxPool 3x3 stride 2
// pad 1 -> y = Conv 3x3 pad 1 (C1 -> C1, bias) -> outputs y and GlobalAveragePool(y).
struct Stem {
  int64_t C, H, W, k, s;
  std::vector<int64_t> pads;
  int64_t images = 2, C1 = 16;
};

std::string stem_name(const Stem& t) {
  return "C " + std::to_string(t.C) + " " + std::to_string(t.H) + "x" + std::to_string(t.W) + " k " +
         std::to_string(t.k) + " stride " + std::to_string(t.s);
}

HostTensor weights(const Shape& s, std::mt19937& rng) {
  const double r = 1.7 / std::sqrt(static_cast<double>(s[1] * s[2] * s[3]));
  return random_tensor(DType::kFloat32, s, rng, -r, r);
}

// `calib_dir`: calibration samples for an int8/fp8 precision.
Status build_and_run(const Stem& t, const std::string& device, const std::string& precision, ActivationLayout layout,
                     std::vector<HostTensor>* out, std::shared_ptr<Plan>* plan, const std::string& calib_dir = "") {
  std::mt19937 rng(71);
  GraphBuilder gb;
  const std::string x = gb.input(random_tensor(DType::kFloat32, {t.images, t.C, t.H, t.W}, rng));
  Attributes stem;
  stem.set("kernel_shape", std::vector<int64_t>{t.k, t.k});
  stem.set("strides", std::vector<int64_t>{t.s, t.s});
  stem.set("pads", t.pads);
  const std::string a = gb.node(
      "Relu", {gb.node("Conv",
                       {x, gb.constant(weights({t.C1, t.C, t.k, t.k}, rng)),
                        gb.constant(random_tensor(DType::kFloat32, {t.C1}, rng, -0.2, 0.2))},
                       stem)});
  Attributes pool;
  pool.set("kernel_shape", std::vector<int64_t>{3, 3});
  pool.set("strides", std::vector<int64_t>{2, 2});
  pool.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  Attributes conv;
  conv.set("kernel_shape", std::vector<int64_t>{3, 3});
  conv.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  const std::string y = gb.node("Conv",
                                {gb.node("MaxPool", {a}, pool), gb.constant(weights({t.C1, t.C1, 3, 3}, rng)),
                                 gb.constant(random_tensor(DType::kFloat32, {t.C1}, rng, -0.2, 0.2))},
                                conv);
  gb.output(y);
  gb.output(gb.node("GlobalAveragePool", {y}));
  BuildOptions opts;
  opts.device = device;
  opts.precision = precision;
  opts.layout = layout;
  opts.calib_dir = calib_dir;
  KILN_TRY(gb.build(plan, opts));
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(*plan, device, &ctx, &notice));
  const HostTensor& in = gb.inputs()[0];
  KILN_TRY(ctx->bind_input((*plan)->tensors[(*plan)->inputs[0]].name, in.dtype(), in.shape(), in.data(), in.size_bytes()));
  out->clear();
  for (int32_t o : (*plan)->outputs) {
    const PlanTensor& y = (*plan)->tensors[o];
    out->emplace_back(y.dtype, y.shape);
    KILN_TRY(ctx->bind_output(y.name, out->back().data(), out->back().size_bytes()));
  }
  return ctx->run();
}

// The cpu reference kernels' NCHW result in FP32.
Status reference(const Stem& t, std::vector<HostTensor>* out) {
  ScopedEnv reference_kernels("KILN_CPU_REFERENCE", "1");
  std::shared_ptr<Plan> plan;
  return build_and_run(t, "cpu", "fp32", ActivationLayout::kChannelsFirst, out, &plan);
}

int count(const Plan& p, const std::string& op, bool channels_last) {
  int k = 0;
  for (const PlanNode& node : p.nodes) k += node.op == op && is_channels_last(node.attrs) == channels_last;
  return k;
}

// The global average pools that read NHWC (ReduceMean over axes 1 and 2).
int nhwc_means(const Plan& p) {
  int k = 0;
  for (const PlanNode& node : p.nodes) k += node.op == "ReduceMean" && node.attrs.get_ints("axes", {}) == std::vector<int64_t>{1, 2};
  return k;
}

// ResNet's stem; one channel; pads that differ per side; a stride-4 patch embedding (its blocks
// hold the whole kernel: a 1x1 convolution); stride 3.
const Stem kStems[] = {{3, 16, 12, 7, 2, {3, 3, 3, 3}},
                       {1, 10, 14, 3, 2, {1, 1, 1, 1}},
                       {3, 12, 8, 5, 2, {2, 1, 1, 2}},
                       {3, 16, 16, 4, 4, {0, 0, 0, 0}},
                       {2, 9, 12, 3, 3, {0, 0, 0, 0}}};

TEST(SpaceToDepthConv, StemAndPoolJoinTheRegionOnCpuAndOpenCl) {
  for (const Stem& t : kStems) {
    SCOPED_TRACE(stem_name(t));
    std::vector<HostTensor> want, got;
    ASSERT_TRUE(reference(t, &want).is_ok());
    for (const char* precision : {"fp32", "fp16"})
      for (const char* device : {"cpu", "opencl"}) {
        if (std::string(device) == "opencl" && !have_opencl()) continue;
        SCOPED_TRACE(std::string(device) + " " + precision);
        std::shared_ptr<Plan> p;
        const Status st = build_and_run(t, device, precision, ActivationLayout::kChannelsLast, &got, &p);
        ASSERT_TRUE(st.is_ok()) << st.message();
        // SpaceToDepth writes the region's input (NHWC, channels added); both convolutions, the
        // pool and the mean NHWC; Transposes out of the region: y, and the means.
        EXPECT_EQ(count(*p, "SpaceToDepth", true), 1);
        EXPECT_EQ(count(*p, "Conv", true), 2);
        EXPECT_EQ(count(*p, "MaxPool", true), 1);
        EXPECT_EQ(nhwc_means(*p), 1);
        EXPECT_EQ(count(*p, "Transpose", false), 2);
        EXPECT_EQ(count(*p, "Pad", false), 0);
        const bool fp16 = std::string(precision) == "fp16";
        EXPECT_TRUE(outputs_close(got, want, fp16 ? 2e-2 : 1e-4, fp16 ? 2e-2 : 1e-5));
      }
  }
}

// Spatial dims the stride does not divide, dilation, or a form with more than 4x the
// multiplications: the convolution stays NCHW (and so does the pool after it).
TEST(SpaceToDepthConv, WhereItDoesNotApply) {
  const Stem odd{3, 15, 12, 3, 2, {1, 1, 1, 1}};
  const Stem wasteful{1, 12, 12, 1, 4, {0, 0, 0, 0}};  // 1x1 stride 4: 16 channels for 1 tap in FP32
  for (const Stem& t : {odd, wasteful}) {
    SCOPED_TRACE(stem_name(t));
    std::vector<HostTensor> want, got;
    ASSERT_TRUE(reference(t, &want).is_ok());
    std::shared_ptr<Plan> p;
    ASSERT_TRUE(build_and_run(t, "cpu", "fp32", ActivationLayout::kChannelsLast, &got, &p).is_ok());
    EXPECT_EQ(count(*p, "SpaceToDepth", true) + count(*p, "SpaceToDepth", false), 0);
    EXPECT_EQ(count(*p, "MaxPool", true), 0);
    EXPECT_EQ(count(*p, "Conv", false), 1);
    EXPECT_TRUE(outputs_close(got, want, 1e-4, 1e-5));
  }
}

// An FP8 build keeps the 3-channel stem in FP16 and quantizes the pooled output before the first
// FP8 convolution: the pool and that per-tensor QuantizeLinear follow the stem into the region
// (no Transpose before the FP8 convolution); same values as the NCHW FP8 plan of one calibration.
TEST(SpaceToDepthConv, Fp8BuildsStemJoinsThroughItsQuantizeLinear) {
  const Stem t = kStems[0];
  const std::string dir = ::testing::TempDir() + "/kiln_stem_fp8_calib";
  std::filesystem::create_directories(dir);
  std::mt19937 rng(74);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(write_npy(dir + "/" + std::to_string(i) + ".npy",
                          random_tensor(DType::kFloat32, {t.images, t.C, t.H, t.W}, rng)).is_ok());
  std::vector<HostTensor> want, got;
  std::shared_ptr<Plan> p;
  Status st = build_and_run(t, "cpu", "fp8", ActivationLayout::kChannelsFirst, &want, &p, dir);
  ASSERT_TRUE(st.is_ok()) << st.message();
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !have_opencl()) continue;
    SCOPED_TRACE(device);
    st = build_and_run(t, device, "fp8", ActivationLayout::kChannelsLast, &got, &p, dir);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_EQ(count(*p, "SpaceToDepth", true), 1);
    EXPECT_EQ(count(*p, "MaxPool", true), 1);
    EXPECT_EQ(count(*p, "Fp8Conv", true), 1);
    // Nothing between the input and the FP8 convolution converts a layout.
    for (const PlanNode& n : p->nodes) {
      if (n.op == "Fp8Conv") break;
      EXPECT_NE(n.op, "Transpose") << n.name;
    }
    EXPECT_TRUE(outputs_close(got, want, 1e-3, 1e-3));
  }
}

// The plan rules refuse a channels-last MaxPool with an Indices output.
TEST(SpaceToDepthConv, RulesRefuseAChannelsLastPoolWithIndices) {
  std::mt19937 rng(72);
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{2, 2});
  OpSpec s{"MaxPool", 13, a, {random_tensor(DType::kFloat32, {1, 4, 4, 8}, rng)}, {false}};
  s.num_outputs = 2;
  auto plan = std::make_shared<Plan>();
  ASSERT_TRUE(build_op_plan(s, "cpu", plan.get()).is_ok());
  for (PlanNode& n : plan->nodes)
    if (n.op == "MaxPool") n.attrs.set(kAttrChannelsLast, int64_t{1});
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  const Status st = ExecutionContext::create(plan, "cpu", &ctx, &notice);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Indices"), std::string::npos) << st.message();
}

// A channels-last MaxPool over channels that fill no 16-byte run (one channel per work-item on
// OpenCL, kernels/pool.cl): the plan of an NCHW pool made channels-last, on OpenCL against the cpu.
TEST(SpaceToDepthConv, ChannelsLastPoolOverOddChannels) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(73);
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{3, 3});
  a.set("strides", std::vector<int64_t>{2, 2});
  a.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  const HostTensor x = random_tensor(DType::kFloat32, {2, 7, 9, 6}, rng);  // NHWC, 6 channels
  std::vector<HostTensor> outs;
  for (const char* device : {"cpu", "opencl"}) {
    OpSpec s{"MaxPool", 13, a, {random_tensor(DType::kFloat32, {2, 6, 7, 9}, rng)}, {false}};
    auto plan = std::make_shared<Plan>();
    ASSERT_TRUE(build_op_plan(s, device, plan.get()).is_ok());
    ASSERT_EQ(plan->nodes.size(), 1u);
    PlanNode& n = plan->nodes[0];
    n.attrs.set(kAttrChannelsLast, int64_t{1});
    plan->tensors[n.inputs[0]].shape = x.shape();
    plan->tensors[n.outputs[0]].shape = channels_last_shape(plan->tensors[n.outputs[0]].shape);
    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    Status st = ExecutionContext::create(plan, device, &ctx, &notice);
    ASSERT_TRUE(st.is_ok()) << st.message();
    const PlanTensor& y = plan->tensors[n.outputs[0]];
    outs.emplace_back(y.dtype, y.shape);
    ASSERT_TRUE(ctx->bind_input(plan->tensors[n.inputs[0]].name, x.dtype(), x.shape(), x.data(), x.size_bytes()).is_ok());
    ASSERT_TRUE(ctx->bind_output(y.name, outs.back().data(), outs.back().size_bytes()).is_ok());
    st = ctx->run();
    ASSERT_TRUE(st.is_ok()) << st.message();
  }
  EXPECT_EQ(outs[0].shape(), (Shape{2, 4, 5, 6}));
  EXPECT_TRUE(tensors_close(outs[1], outs[0], 0, 0));
}

// By default where the device offers FP16 tensor cores: the stem's space-to-depth form runs on
// them with the rest of the region.
TEST(MmaVariant, SpaceToDepthStemJoinsTheFp16Region) {
  if (!opencl_offers_mma(mma::Elem::kF16)) GTEST_SKIP() << "no FP16 tensor cores (KILN_MMA_EMULATE=1 emulates them)";
  for (const Stem& t : {kStems[0], kStems[2]}) {
    SCOPED_TRACE(stem_name(t));
    std::vector<HostTensor> want, got;
    ASSERT_TRUE(reference(t, &want).is_ok());
    std::shared_ptr<Plan> p;
    const Status st = build_and_run(t, "opencl", "fp16", ActivationLayout::kAuto, &got, &p);
    ASSERT_TRUE(st.is_ok()) << st.message();
    const int mma = channels_last_on_mma(*p);
    EXPECT_EQ(mma, 2);
    EXPECT_EQ(count(*p, "MaxPool", true), 1);
    EXPECT_EQ(nhwc_means(*p), 1);
    EXPECT_TRUE(outputs_close(got, want, 2e-2, 2e-2));
  }
}

}  // namespace
}  // namespace kiln::test
