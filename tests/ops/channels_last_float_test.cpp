// Channels-last float convolutions (compiler/passes/channels_last.cpp, runtime/ops/channels_last.h):
// Conv in FP32 and FP16 forced NHWC runs on the cpu's reference kernel and the portable OpenCL
// kernel, and by default (auto) on the FP16 tensor cores (MmaVariant.*, emulated on PoCL by ctest
// mma_variant_emulated); every plan must match the NCHW plan of the cpu's reference kernels within
// float rounding (the same products, summed in another order).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/device/devices.h"
#include "runtime/exec/execution_context.h"
#include "runtime/ops/channels_last.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

Attributes conv_attrs(int64_t k, int64_t stride, int64_t group) {
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{k, k});
  a.set("pads", std::vector<int64_t>(4, k / 2));
  a.set("strides", std::vector<int64_t>{stride, stride});
  a.set("group", group);
  return a;
}

// Weights of a k x k convolution scaled so that outputs stay near 1 (FP16 keeps its precision).
HostTensor weights(const Shape& s, std::mt19937& rng) {
  const double r = 1.7 / std::sqrt(static_cast<double>(s[1] * s[2] * s[3]));
  return random_tensor(DType::kFloat32, s, rng, -r, r);
}

// x [N, C, H, W] ->
//   a = Relu(Conv 3x3 pad 1 (C -> C, bias))                      region (reads the input)
//   b = Conv 1x1 (C -> C2) of a                                   region, a graph output
//   c = Relu(Conv 3x3 stride s (C2 -> C) of b + a) (s = 1; else no residual): the residual and
//       the ReLU fuse into the convolution                       region, read by MaxPool
//   d = MaxPool 2x2 of c                                          graph output
//   e = Conv 1x1 group 2 (C -> C4) of x                           NCHW (group 2), graph output
struct FloatNet {
  int64_t images = 2, C = 16, H = 9, W = 7, C2 = 32, C4 = 24, stride = 1;
};

std::shared_ptr<Plan> build_net(const FloatNet& n, const BuildOptions& opts, std::vector<HostTensor>* inputs,
                                Status* st) {
  std::mt19937 rng(61);
  GraphBuilder gb;
  const std::string x = gb.input(random_tensor(DType::kFloat32, {n.images, n.C, n.H, n.W}, rng));
  auto conv = [&](const std::string& in, int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t group) {
    return gb.node("Conv",
                   {in, gb.constant(weights({cout, cin / group, k, k}, rng)),
                    gb.constant(random_tensor(DType::kFloat32, {cout}, rng, -0.2, 0.2))},
                   conv_attrs(k, stride, group));
  };
  const std::string a = gb.node("Relu", {conv(x, n.C, n.C, 3, 1, 1)});
  const std::string b = conv(a, n.C, n.C2, 1, 1, 1);
  std::string c = conv(b, n.C2, n.C, 3, n.stride, 1);
  if (n.stride == 1) c = gb.node("Relu", {gb.node("Add", {c, a})});
  Attributes pool;
  pool.set("kernel_shape", std::vector<int64_t>{2, 2});
  const std::string d = gb.node("MaxPool", {c}, pool);
  const std::string e = conv(x, n.C, n.C4, 1, 1, 2);
  for (const std::string& out : {b, d, e}) gb.output(out);
  std::shared_ptr<Plan> plan;
  *st = gb.build(&plan, opts);
  *inputs = gb.inputs();
  return plan;
}

Status run_on(const std::shared_ptr<Plan>& plan, const std::string& device, const std::vector<HostTensor>& inputs,
              std::vector<HostTensor>* out) {
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device, &ctx, &notice));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const HostTensor& t = inputs[i];
    KILN_TRY(ctx->bind_input(plan->tensors[plan->inputs[i]].name, t.dtype(), t.shape(), t.data(), t.size_bytes()));
  }
  out->clear();
  for (int32_t t : plan->outputs) {
    out->emplace_back(plan->tensors[t].dtype, plan->tensors[t].shape);
    KILN_TRY(ctx->bind_output(plan->tensors[t].name, out->back().data(), out->back().size_bytes()));
  }
  return ctx->run();
}

// Builds the network for `device` with `precision` and `layout` and runs it.
Status build_and_run(const FloatNet& n, const std::string& device, const std::string& precision,
                     ActivationLayout layout, std::vector<HostTensor>* out, std::shared_ptr<Plan>* plan_out) {
  BuildOptions opts;
  opts.device = device;
  opts.precision = precision;
  opts.layout = layout;
  std::vector<HostTensor> inputs;
  Status st;
  std::shared_ptr<Plan> plan = build_net(n, opts, &inputs, &st);
  KILN_TRY(st);
  *plan_out = plan;
  return run_on(plan, device, inputs, out);
}

// The cpu reference kernels' NCHW results in FP32: the oracle of every plan here.
Status reference(const FloatNet& n, std::vector<HostTensor>* out) {
  ScopedEnv reference_kernels("KILN_CPU_REFERENCE", "1");
  std::shared_ptr<Plan> plan;
  return build_and_run(n, "cpu", "fp32", ActivationLayout::kChannelsFirst, out, &plan);
}

int count(const Plan& p, const std::string& op, bool channels_last) {
  int k = 0;
  for (const PlanNode& node : p.nodes) k += node.op == op && is_channels_last(node.attrs) == channels_last;
  return k;
}

TEST(ChannelsLastFloat, RegionMatchesNchwOnCpuAndOpenCl) {
  for (const FloatNet& n : {FloatNet{}, FloatNet{1, 8, 6, 11, 16, 8, 2}}) {
    SCOPED_TRACE("C " + std::to_string(n.C) + " stride " + std::to_string(n.stride));
    std::vector<HostTensor> want, got;
    ASSERT_TRUE(reference(n, &want).is_ok());
    for (const char* precision : {"fp32", "fp16"})
      for (const char* device : {"cpu", "opencl"}) {
        if (std::string(device) == "opencl" && !have_opencl()) continue;
        SCOPED_TRACE(std::string(device) + " " + precision);
        std::shared_ptr<Plan> p;
        const Status st = build_and_run(n, device, precision, ActivationLayout::kChannelsLast, &got, &p);
        ASSERT_TRUE(st.is_ok()) << st.message();
        // a, b and c in the region, e (group 2) outside; Transposes: x into the region, b (a graph
        // output) and c (read by MaxPool) out of it.
        EXPECT_EQ(count(*p, "Conv", true), 3);
        EXPECT_EQ(count(*p, "Conv", false), 1);
        EXPECT_EQ(count(*p, "Transpose", false), 3);
        const bool fp16 = std::string(precision) == "fp16";
        EXPECT_TRUE(outputs_close(got, want, fp16 ? 2e-2 : 1e-4, fp16 ? 2e-2 : 1e-5));
      }
  }
}

// The cpu target's own choice (auto) is NCHW: its kernels gain nothing from NHWC; and channels
// that fill no whole 16-byte run (FP32: C not a multiple of 4) stay NCHW even when forced.
TEST(ChannelsLastFloat, WhereItDoesNotApply) {
  std::vector<HostTensor> got;
  std::shared_ptr<Plan> p;
  ASSERT_TRUE(build_and_run(FloatNet{}, "cpu", "fp32", ActivationLayout::kAuto, &got, &p).is_ok());
  EXPECT_EQ(count(*p, "Conv", true), 0);
  ASSERT_TRUE(build_and_run(FloatNet{1, 6, 5, 5, 10, 6, 1}, "cpu", "fp32", ActivationLayout::kChannelsLast, &got, &p)
                  .is_ok());
  EXPECT_EQ(count(*p, "Conv", true), 0);
  EXPECT_EQ(count(*p, "Transpose", false), 0);
}

// One convolution with padding on one side, strides and dilations forced channels-last (between
// two Transposes), against the NCHW cpu kernel.
TEST(ChannelsLastFloat, SingleConvolutionGeometry) {
  std::mt19937 rng(62);
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{3, 2});
  a.set("pads", std::vector<int64_t>{1, 0, 2, 1});
  a.set("strides", std::vector<int64_t>{2, 1});
  a.set("dilations", std::vector<int64_t>{1, 2});
  OpSpec s{"Conv", 17, a,
           {random_tensor(DType::kFloat32, {2, 12, 9, 10}, rng), weights({20, 12, 3, 2}, rng),
            random_tensor(DType::kFloat32, {20}, rng)},
           {false, true, true}};
  EXPECT_TRUE(channels_last_matches_nchw(s, 1e-4, 1e-5));
}

// The plan rules refuse the attribute where the kernels do not take it.
TEST(ChannelsLastFloat, RulesRefuseItWhereKernelsDoNot) {
  BuildOptions opts;
  opts.device = "cpu";
  opts.layout = ActivationLayout::kChannelsLast;
  std::vector<HostTensor> inputs;
  Status st;
  std::shared_ptr<Plan> plan = build_net(FloatNet{}, opts, &inputs, &st);
  ASSERT_TRUE(st.is_ok()) << st.message();
  std::string grouped;
  for (PlanNode& n : plan->nodes)
    if (n.op == "Conv" && !is_channels_last(n.attrs)) {
      n.attrs.set(kAttrChannelsLast, int64_t{1});
      grouped = n.name;
    }
  ASSERT_FALSE(grouped.empty());
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  st = ExecutionContext::create(plan, "cpu", &ctx, &notice);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find(grouped), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("group 1"), std::string::npos) << st.message();
}

// The FP16 tensor cores' channels-last rows (kernels/mma_gemm.cl MMA_AMODE 1), chosen by default
// where the device offers them, against the FP32 reference and the NCHW FP16 plan.
TEST(MmaVariant, ChannelsLastFp16RegionMatchesNchw) {
  if (!opencl_offers_mma(mma::Elem::kF16)) GTEST_SKIP() << "no FP16 tensor cores (KILN_MMA_EMULATE=1 emulates them)";
  // 16+ output channels each (fewer run the direct kernel), 24 columns: a partial tile.
  for (const FloatNet& n : {FloatNet{}, FloatNet{1, 16, 6, 11, 24, 8, 2}}) {
    SCOPED_TRACE("C " + std::to_string(n.C) + " stride " + std::to_string(n.stride));
    std::vector<HostTensor> want, nchw, got;
    ASSERT_TRUE(reference(n, &want).is_ok());
    std::shared_ptr<Plan> p;
    ASSERT_TRUE(build_and_run(n, "opencl", "fp16", ActivationLayout::kChannelsFirst, &nchw, &p).is_ok());
    const Status st = build_and_run(n, "opencl", "fp16", ActivationLayout::kAuto, &got, &p);
    ASSERT_TRUE(st.is_ok()) << st.message();
    const int mma = channels_last_on_mma(*p);
    EXPECT_EQ(mma, 3);
    EXPECT_TRUE(outputs_close(got, want, 2e-2, 2e-2));
    EXPECT_TRUE(outputs_close(got, nchw, 1e-2, 1e-2));
  }
}

}  // namespace
}  // namespace kiln::test
